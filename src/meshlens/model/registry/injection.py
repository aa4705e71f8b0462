"""Sidecar injection, decided as Istio's injector decides it for a pod being created.

Layer: L3. Imports: stdlib only.

Two gates, both from Istio: the ``MutatingWebhookConfiguration`` selectors of the istiod chart
(``manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml``: which pods
reach the webhook at all) and ``pkg/kube/inject/inject.go:injectRequired`` (what the webhook
does with them). A *real* pod (one exported from a cluster) is not decided here: it was injected
when it was created, so it has a sidecar exactly when its spec has an ``istio-proxy`` container
(see :mod:`meshlens.model.registry.pods`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: `IgnoredNamespaces` (pkg/kube/inject/initializer.go): never injected.
IGNORED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease",
                                "local-path-storage"})
INJECT_LABEL = "sidecar.istio.io/inject"
REV_LABEL = "istio.io/rev"
NS_INJECTION_LABEL = "istio-injection"


@dataclass(frozen=True, slots=True)
class InjectionPolicy:
    """What the cluster's injector looks like.

    Attributes:
        revision: the control plane revision asked about (``--revision``); ``""`` is the
            default revision, whose webhooks also serve ``istio-injection=enabled`` and
            ``istio.io/rev=default``.
        assume: a namespace without a Namespace object in the input is taken as labelled for
            injection (the user is asking about a mesh); ``--assume-injection=false`` turns it off.
    """

    revision: str = ""
    assume: bool = True

    def namespace_labels(self, labels: dict[str, str] | None) -> dict[str, str]:
        """The labels of a namespace; an absent Namespace object is assumed labelled if ``assume``."""
        if labels is not None:
            return labels
        if not self.assume:
            return {}
        return {REV_LABEL: self.revision} if self.revision else {NS_INJECTION_LABEL: "enabled"}


def webhook_selects(ns_labels: dict[str, str], pod_labels: dict[str, str], revision: str) -> bool:
    """Whether one of the revision's injection webhooks receives the pod (object/namespace selectors).

    Example:
        >>> webhook_selects({"istio-injection": "enabled"}, {}, "")
        True
        >>> webhook_selects({"istio.io/rev": "canary"}, {}, "")
        False
        >>> webhook_selects({}, {"sidecar.istio.io/inject": "true"}, "")
        True
    """
    rev = revision or "default"
    pod_inject = pod_labels.get(INJECT_LABEL)
    ns_inj, ns_rev = ns_labels.get(NS_INJECTION_LABEL), ns_labels.get(REV_LABEL)
    # rev.namespace.sidecar-injector.istio.io: namespace istio.io/rev=REV, no istio-injection.
    if ns_rev == rev and ns_inj is None and pod_inject != "false":
        return True
    # rev.object.sidecar-injector.istio.io: unlabelled namespace, pod istio.io/rev=REV.
    if ns_rev is None and ns_inj is None and pod_inject != "false" \
            and pod_labels.get(REV_LABEL) == rev:
        return True
    if revision:
        return False
    # namespace.sidecar-injector.istio.io (default revision only): istio-injection=enabled.
    if ns_inj == "enabled" and pod_inject != "false":
        return True
    # object.sidecar-injector.istio.io: unlabelled namespace, pod label inject=true, no rev label.
    return ns_rev is None and ns_inj is None and pod_inject == "true" \
        and REV_LABEL not in pod_labels


def inject_required(namespace: str, labels: dict[str, str], annotations: dict[str, str],
                    host_network: bool) -> bool:
    """`injectRequired` with the default ``policy: enabled`` and no always/never selectors.

    Example:
        >>> inject_required("shop", {}, {"sidecar.istio.io/inject": "false"}, False)
        False
        >>> inject_required("shop", {}, {}, True)
        False
    """
    if host_network or namespace in IGNORED_NAMESPACES:
        return False
    selector = labels.get(INJECT_LABEL, annotations.get(INJECT_LABEL, ""))
    return selector != "false"  # "true", "" and invalid values all fall to the enabled policy


def injected(policy: InjectionPolicy, ns_labels: dict[str, str] | None, namespace: str,
             labels: dict[str, str], annotations: dict[str, str], host_network: bool) -> bool:
    """Would the injector add a sidecar to this pod at creation?"""
    effective = policy.namespace_labels(ns_labels)
    return webhook_selects(effective, labels, policy.revision) and inject_required(
        namespace, labels, annotations, host_network)
