"""Apply manifests (fixture YAML files or dicts) into a test namespace, labelled with the run id.

Why it exists: suites keep their objects as manifests beside them (STYLE.md §6); this turns them
into API objects so that (1) every object *and every pod template* carries the run-id labels —
gc finds leftovers by label, and pods created by controllers inherit the template's labels;
(2) a bad manifest fails as one `ConfigError` naming the file, the field and the reason, before
anything exists: all documents are checked locally, kinds are resolved by discovery, and the
API server validates every object in a dry run before the first real write; (3) re-applying the
same manifest converges instead of failing with AlreadyExists.

Create-or-replace is server-side apply with ``force``: the object ends up exactly as the
manifest says for every field meshcert manages, whoever touched it before. Kind-generic (via
discovery), so custom resources (Gateway API routes, mesh resources) apply the same way.

What it is not: no templating, no deletion (namespaces are throwaway), no cluster-scoped
objects unless asked for (they outlive the namespace and need their own cleanup).
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import ApiClient

from meshcert.errors import ConfigError
from meshcert.kube.client import KubeApiError, request
from meshcert.runid import run_labels

#: The field manager recorded in managedFields for everything meshcert applies.
FIELD_MANAGER = "meshcert"
#: RFC 1123 subdomain (metadata.name of most kinds); 253 is the API server's own limit.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MAX_NAME = 253
#: Where controllers keep the pod (or job) template whose labels pods inherit.
_TEMPLATE_PATHS: tuple[tuple[str, ...], ...] = (
    ("spec", "template"),  # Deployment, ReplicaSet, StatefulSet, DaemonSet, Job
    ("spec", "jobTemplate"),  # CronJob → its Jobs
    ("spec", "jobTemplate", "spec", "template"),  # CronJob → its Jobs' pods
)

#: A Kubernetes object as JSON. Deliberately untyped: manifests may be of any kind, including
#: custom resources; the typed views live in meshcert.invariants.
KubeObject = dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    """One validated document: where it came from (for messages) and its content."""

    source: str
    obj: KubeObject

    @property
    def api_version(self) -> str:
        return str(self.obj["apiVersion"])

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


def validate_document(doc: object, *, source: str, namespace: str | None = None) -> Manifest:
    """Check the fields apply relies on; raise ConfigError(source, field, reason) on the first bad one."""
    if not isinstance(doc, Mapping):
        raise ConfigError(source, "", f"a manifest must be a mapping, got {type(doc).__name__}")
    for key in ("apiVersion", "kind"):
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(source, key, "missing or not a non-empty string")
    meta = doc.get("metadata")
    if not isinstance(meta, Mapping):
        raise ConfigError(source, "metadata", "missing or not a mapping")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(
            source, "metadata.name", "missing (generateName is not supported: apply needs a name)"
        )
    if len(name) > _MAX_NAME or not _DNS_SUBDOMAIN.match(name):
        raise ConfigError(source, "metadata.name", f"{name!r} is not a lowercase RFC 1123 name")
    ns = meta.get("namespace")
    if ns is not None and namespace is not None and ns != namespace:
        raise ConfigError(
            source, "metadata.namespace", f"is {ns!r} but manifests are applied into {namespace!r}; remove it"
        )
    for key in ("labels", "annotations"):
        values = meta.get(key)
        if values is None:
            continue
        if not isinstance(values, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in values.items()
        ):
            raise ConfigError(source, f"metadata.{key}", "must map strings to strings (quote numbers)")
    for path in _TEMPLATE_PATHS:
        template = _dig(doc, path)
        if template is not None and not isinstance(template, Mapping):
            raise ConfigError(source, ".".join(path), "must be a mapping")
    return Manifest(source, copy.deepcopy(dict(doc)))


def _dig(doc: Mapping[str, Any], path: Sequence[str]) -> object:
    node: object = doc
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def load_manifests(path: Path, *, namespace: str | None = None) -> list[Manifest]:
    """Every non-empty document of a YAML file, validated. Sources read ``file`` or ``file#N``."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot read: {e.strerror or e}") from e
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(str(path), "", f"invalid YAML{where}: {problem}") from e
    if not docs:
        raise ConfigError(str(path), "", "no documents")
    many = len(docs) > 1
    return [
        validate_document(d, source=f"{path}#{i}" if many else str(path), namespace=namespace)
        for i, d in enumerate(docs, start=1)
    ]


def with_run_labels(obj: Mapping[str, Any], run_id: str) -> KubeObject:
    """A copy of ``obj`` with the run labels on its metadata and on every pod/job template."""
    out: KubeObject = copy.deepcopy(dict(obj))
    labels = run_labels(run_id)
    targets: list[dict[str, Any]] = [out]
    for path in _TEMPLATE_PATHS:
        template = _dig(out, path)
        if isinstance(template, dict):
            targets.append(template)
    for target in targets:
        meta = target.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
    return out


@dataclass(frozen=True)
class ApiResource:
    """Where a kind lives on the API server (from discovery)."""

    group_version: str
    plural: str
    namespaced: bool

    def path(self, *, namespace: str | None, name: str) -> str:
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        scope = f"/namespaces/{namespace}" if self.namespaced else ""
        return f"{base}{scope}/{self.plural}/{name}"


@dataclass
class Discovery:
    """Kind → resource lookups, cached per instance (one apply call or one Applier)."""

    api: ApiClient
    _cache: dict[str, dict[str, ApiResource]] = field(default_factory=dict)

    def resolve(self, manifest: Manifest) -> ApiResource:
        gv = manifest.api_version
        if gv not in self._cache:
            path = "/api/v1" if gv == "v1" else f"/apis/{gv}"
            try:
                listing = request(self.api, "GET", path, what=f"discover {gv}")[1]
            except KubeApiError as e:
                if e.not_found:
                    raise ConfigError(
                        manifest.source, "apiVersion", f"{gv!r} is not served by this cluster"
                    ) from e
                raise
            self._cache[gv] = {
                str(r["kind"]): ApiResource(gv, str(r["name"]), bool(r.get("namespaced")))
                for r in listing.get("resources", [])
                if "/" not in str(r.get("name", ""))  # subresources (pods/log, deployments/scale)
            }
        resource = self._cache[gv].get(manifest.kind)
        if resource is None:
            raise ConfigError(manifest.source, "kind", f"{manifest.kind!r} is not served in {gv!r}")
        return resource


def _as_manifests(items: Iterable[Path | Mapping[str, Any]], namespace: str) -> list[Manifest]:
    out: list[Manifest] = []
    for i, item in enumerate(items, start=1):
        if isinstance(item, Path):
            out.extend(load_manifests(item, namespace=namespace))
        else:
            name = item.get("metadata", {}).get("name", "?") if isinstance(item, Mapping) else "?"
            out.append(validate_document(item, source=f"<manifest {i}: {name}>", namespace=namespace))
    return out


def apply_manifests(
    api: ApiClient,
    items: Iterable[Path | Mapping[str, Any]],
    *,
    namespace: str,
    run_id: str,
    allow_cluster_scoped: bool = False,
) -> list[KubeObject]:
    """Create-or-replace every object of ``items`` in ``namespace``; return them as stored.

    Order is preserved (put a ConfigMap before the Deployment that mounts it). All documents are
    validated first — locally, by discovery, then by a server-side dry run — so a bad one
    raises ConfigError and nothing is created. If a real write still fails (quota, a webhook),
    the objects this call created are deleted again before the error propagates.
    """
    manifests = _as_manifests(items, namespace)
    discovery = Discovery(api)
    plan: list[tuple[Manifest, ApiResource, KubeObject]] = []
    for m in manifests:
        resource = discovery.resolve(m)
        if not resource.namespaced and not allow_cluster_scoped:
            raise ConfigError(
                m.source,
                "kind",
                f"{m.kind} is cluster-scoped; pass allow_cluster_scoped=True and clean it up",
            )
        body = with_run_labels(m.obj, run_id)
        if resource.namespaced:
            body["metadata"]["namespace"] = namespace
        plan.append((m, resource, body))
    for m, resource, body in plan:
        try:
            _apply_one(api, m, resource, body, namespace=namespace, dry_run=True)
        except KubeApiError as e:
            rejected = rejection(e)
            if rejected is not None:
                field_path, reason = rejected
                raise ConfigError(m.source, field_path, f"{m.kind} {m.name}: {reason}") from e
            raise
    applied: list[KubeObject] = []
    created: list[tuple[ApiResource, str]] = []
    try:
        for m, resource, body in plan:
            status, stored = _apply_one(api, m, resource, body, namespace=namespace, dry_run=False)
            applied.append(stored)
            if status == 201:
                created.append((resource, m.name))
    except KubeApiError:
        for resource, name in reversed(created):
            # Best effort: the namespace's deletion removes it anyway; do not mask the real error.
            with contextlib.suppress(KubeApiError):
                path = resource.path(namespace=namespace, name=name)
                request(api, "DELETE", path, what=f"roll back {name}")
        raise
    return applied


#: Server-side apply answers a field that is not in the schema with 500 and this text (an
#: apiserver quirk: the typed patch cannot be built), e.g. ".spec.replicaz: field not declared".
_UNDECLARED = re.compile(
    r"failed to create typed patch object.*?\.([\w.\[\]=-]+): (field not declared in schema)"
)


def rejection(e: KubeApiError) -> tuple[str, str] | None:
    """(field, reason) when the server rejected the object itself (a manifest error), else None."""
    if e.status in (400, 403, 404, 409, 422):
        return e.causes[0] if e.causes else ("", e.message or e.reason)
    match = _UNDECLARED.search(e.message)
    if match:
        return match.group(1), match.group(2)
    return None


def _apply_one(
    api: ApiClient, m: Manifest, resource: ApiResource, body: KubeObject, *, namespace: str, dry_run: bool
) -> tuple[int, KubeObject]:
    query = {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"}
    if dry_run:
        query["dryRun"] = "All"
    verb = "dry-run apply" if dry_run else "apply"
    return request(
        api,
        "PATCH",
        resource.path(namespace=namespace if resource.namespaced else None, name=m.name),
        what=f"{verb} {m.kind} {namespace}/{m.name} ({m.source})",
        body=body,
        query=query,
        content_type="application/apply-patch+yaml",
    )
