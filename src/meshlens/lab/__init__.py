"""The only layer that runs processes and opens sockets: the real Envoy and the lab.

Layer: L7. Imports: compiler, emit, loader, model, pipeline, simulate, diagnostics, errors; grpc.

* ``envoy``: the Envoy binary, ``--mode validate`` of a config dump, the Istio-only extension table.
* The lab (``meshlens lab``): ``addressing`` (everything on 127.0.0.0/8), ``localize`` (the
  documented changes that make compiled xDS runnable here), ``bootstrap``, ``certs`` (lab CA,
  SPIFFE identities), ``ads_server`` (gRPC ADS, state of the world), ``process`` (children and
  Envoy's admin), ``fake_pods`` (HTTP workloads, kube-proxy stand-in), ``loadgen``, ``report``,
  ``runner`` (a running lab), ``scenario`` (YAML scenarios), ``seed`` (the seed's table).
"""
