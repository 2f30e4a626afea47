#!/usr/bin/python3
"""Checks of the herald Helm chart (helm/herald) without a helm binary.

1. yamllint on Chart.yaml, values.yaml and ci/*.yaml, and on every rendered
   manifest (duplicate keys, syntax).
2. values.yaml and ci/all-options-values.yaml (merged over values.yaml, as
   helm merges them) validate against values.schema.json, and a list of bad
   values is rejected, both by Python's jsonschema and by the renderer
   (gojsonschema, the validator helm itself used).
3. Every template rendered by tests/helm/render (helm's template engine:
   text/template + sprig + include/tpl/toYaml/...) with the default values,
   with ci/all-options-values.yaml and with a set of scenario overrides; every
   document parses as YAML, and the objects are checked: security context,
   probes on /healthz and /readyz at the named port whose containerPort is
   the port of http.listen in the ConfigMap, terminationGracePeriodSeconds
   above shutdown.timeout, the config checksum annotation (and that it moves
   with the config and only with it), enableServiceLinks false, herald.conf
   keys are keys herald accepts, Secret wiring, Service ports, HPA / KEDA /
   PDB / ServiceMonitor / NetworkPolicy present exactly when enabled, KEDA
   triggers on the events and retry topics with the group id, NetworkPolicy
   egress denying 169.254.169.254 and private ranges.
4. The checks can fail: a copy of the chart with deliberately broken
   templates (probe port, probe path, grace period, service links, unknown
   config key, ...) must be reported.

Config keys are checked with `$HERALD_BIN check-config --config FILE` when
HERALD_BIN is set and supports it, else against `$HERALD_BIN --help-config`,
else against the key list of the design (KNOWN_KEYS below).

Usage: test_chart.py [--renderer PATH] [-v]
       (without --renderer the renderer is built with Go into a temp dir)
Exit status 0 when every check passes, 1 otherwise.
"""

import argparse
import copy
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "herald"
RENDER_SRC = Path(__file__).resolve().parent / "render"

# The keys herald accepts besides kafka.* (design.md, config.c's table).
KNOWN_KEYS = {
    "kafka.bootstrap.servers", "kafka.group.id", "topics.events", "topics.retry_prefix",
    "topics.dlq", "topics.attempts", "redis.url", "redis.timeout", "retry.schedule",
    "retry.jitter", "delivery.timeout", "delivery.connect_timeout", "delivery.max_in_flight",
    "delivery.max_in_flight_per_endpoint", "delivery.rate_limit_per_s", "delivery.max_attempts",
    "delivery.max_pending", "delivery.response_max", "delivery.allow_cidrs",
    "delivery.https_only", "delivery.ca_bundle", "delivery.proxy", "delivery.user_agent",
    "breaker.failures", "breaker.cooldown", "subscription.disable_after", "event.max_bytes",
    "cache.ttl", "cache.max_tenants", "attempts.history", "attempts.body_max", "http.listen",
    "log.level", "shutdown.timeout",
}
HERALD_DEFAULTS = {
    "http.listen": "0.0.0.0:9464", "shutdown.timeout": "30s", "kafka.group.id": "herald",
    "kafka.bootstrap.servers": "localhost:9092", "topics.events": "herald.events",
    "topics.retry_prefix": "herald.retry.", "retry.schedule": "5s,5m,30m,2h,5h,10h,10h",
}
SECRETISH = re.compile(r"password|secret|sasl\.jaas|ssl\.key\.pem")
UNITS_MS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}

YAMLLINT_SOURCE = """
extends: default
rules:
  line-length: {max: 120}
  document-start: disable
  comments: {min-spaces-from-content: 1}
  truthy: {allowed-values: ["true", "false"], check-keys: false}
"""
YAMLLINT_RENDERED = """
extends: default
rules:
  line-length: disable
  indentation: disable
  document-start: disable
  comments: disable
  comments-indentation: disable
  truthy: disable
  empty-lines: disable
  braces: disable
  brackets: disable
  quoted-strings: disable
  key-duplicates: enable
"""


# ----------------------------------------------------------------- helpers

class Failure(Exception):
    pass


class Results:
    def __init__(self, verbose):
        self.passed = 0
        self.failed = 0
        self.verbose = verbose

    def run(self, name, fn, *args):
        try:
            problems = fn(*args) or []
        except Failure as e:
            problems = [str(e)]
        except Exception as e:  # a crash in a check is a failure, with its cause
            problems = [f"{type(e).__name__}: {e}"]
        if problems:
            self.failed += 1
            print(f"FAIL: {name}")
            for p in problems:
                print(f"      - {p}")
        else:
            self.passed += 1
            print(f"ok: {name}")


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML silently keeps the last of duplicate keys; Kubernetes would not."""


def _mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(text):
    return yaml.load(text, Loader=UniqueKeyLoader)


def deep_merge(dst, src):
    """helm's coalesce: maps merge, anything else replaces, null deletes."""
    out = copy.deepcopy(dst)
    for k, v in src.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def duration_ms(s):
    s = str(s).strip()
    if s == "0":
        return 0
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", s)
    if not m:
        raise Failure(f"invalid duration {s!r}")
    return int(m.group(1)) * UNITS_MS[m.group(2)]


def duration_label(ms):
    """herald's config_format_duration: the largest whole unit."""
    for unit, mul in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        if ms and ms % mul == 0:
            return f"{ms // mul}{unit}"
    return f"{ms}ms"


def parse_conf(text):
    """herald.conf -> ordered list of (key, value) as herald's parser reads it."""
    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise Failure(f"herald.conf line {n}: expected key = value: {line!r}")
        k, _, v = line.partition("=")
        k, v = k.strip(), v.strip()
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        pairs.append((k, v))
    return pairs


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


# --------------------------------------------------------- the renderer

def build_renderer(workdir):
    out = Path(workdir) / "render"
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOFLAGS="",
               GOPROXY="off", GOCACHE=str(Path(workdir) / "gocache"))
    r = subprocess.run(["go", "build", "-o", str(out), "."], cwd=RENDER_SRC, env=env,
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"cannot build the renderer:\n{r.stderr}")
    return str(out)


class Renderer:
    def __init__(self, path, workdir):
        self.path = path
        self.workdir = Path(workdir)
        self.n = 0

    def values_file(self, values):
        self.n += 1
        p = self.workdir / f"values-{self.n}.yaml"
        p.write_text(yaml.safe_dump(values, sort_keys=False))
        return str(p)

    def run(self, overrides=(), chart=CHART, extra_args=()):
        """Render; return (ok, parsed JSON or error text)."""
        args = [self.path, "-chart", str(chart), "-output", "json", "-name", "herald",
                "-namespace", "webhooks", "-api-versions", "monitoring.coreos.com/v1,keda.sh/v1alpha1"]
        for o in overrides:
            args += ["-f", o if isinstance(o, str) else self.values_file(o)]
        args += list(extra_args)
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode:
            return False, r.stderr.strip()
        return True, json.loads(r.stdout)

    def render(self, overrides=(), chart=CHART, extra_args=()):
        ok, out = self.run(overrides, chart, extra_args)
        if not ok:
            raise Failure(f"rendering failed: {out}")
        return Release(out)


class Release:
    """Rendered manifests, re-parsed from their YAML text."""

    def __init__(self, out):
        self.notes = out["notes"]
        self.docs = []
        for m in out["manifests"]:
            obj = load_yaml(m["content"])
            self.docs.append((m["source"], m["content"], obj))
        self.objects = [o for _, _, o in self.docs]

    def of_kind(self, kind):
        return [o for o in self.objects if o.get("kind") == kind]

    def one(self, kind):
        objs = self.of_kind(kind)
        if len(objs) != 1:
            raise Failure(f"expected one {kind}, rendered {len(objs)}")
        return objs[0]

    def deployment(self):
        return self.one("Deployment")

    def container(self):
        cs = self.deployment()["spec"]["template"]["spec"]["containers"]
        for c in cs:
            if c["name"] == "herald":
                return c
        raise Failure("no container named herald")

    def conf_text(self):
        data = self.one("ConfigMap").get("data") or {}
        if "herald.conf" not in data:
            raise Failure("the ConfigMap has no herald.conf key")
        return data["herald.conf"]

    def conf(self):
        return dict(parse_conf(self.conf_text()))

    def conf_get(self, key):
        return self.conf().get(key, HERALD_DEFAULTS.get(key))


# ------------------------------------------------------- config key check

class KeyOracle:
    """Which config keys herald accepts: the binary if we have one, else the design's list."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.bin = os.environ.get("HERALD_BIN") or None
        self.mode = "list"
        self.keys = set(KNOWN_KEYS)
        self.keys_from = "the design's key list"
        if self.bin and os.access(self.bin, os.X_OK):
            try:
                out = subprocess.run([self.bin, "--help-config"], capture_output=True, text=True, timeout=30)
                keys = set(re.findall(r"^\s*([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)\b", out.stdout, flags=re.M))
                if out.returncode == 0 and len(keys) >= 10:
                    self.keys = keys
                    self.keys_from = f"\"{self.bin} --help-config\""
                    self.mode = "help-config"
            except (OSError, subprocess.TimeoutExpired):
                pass
            empty = self.workdir / "empty.conf"
            empty.write_text("")
            r = self._check_config(empty, {})
            if r is not None and r.returncode == 0:
                self.mode = "check-config"
        print(f"note: config keys are checked with {self.describe()}")

    def describe(self):
        return {"check-config": f"\"{self.bin} check-config\"",
                "help-config": f"\"{self.bin} --help-config\"",
                "list": "the key list of the design (set HERALD_BIN to use the binary)"}[self.mode]

    def _check_config(self, path, env):
        try:
            return subprocess.run([self.bin, "check-config", "--config", str(path)], capture_output=True,
                                  text=True, timeout=30,
                                  env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env})
        except (OSError, subprocess.TimeoutExpired):
            return None

    def check(self, conf_text, env):
        """Problems with a herald.conf and the HERALD_* environment of the container."""
        problems = []
        pairs = parse_conf(conf_text)
        keys = [k for k, _ in pairs]
        dups = sorted({k for k in keys if keys.count(k) > 1})
        if dups:
            problems.append(f"herald.conf sets {dups} more than once")
        for k in keys + [env_key(n) for n in env if n.startswith("HERALD_")]:
            if not (k.startswith("kafka.") or k in self.keys):
                problems.append(f"\"{k}\" is not a key herald accepts ({self.describe()})")
            if SECRETISH.search(k) and k in keys:
                problems.append(f"\"{k}\" looks like a secret and must not be in the ConfigMap")
        if self.mode == "check-config":
            p = self.workdir / "herald.conf"
            p.write_text(conf_text)
            r = self._check_config(p, env)
            if r is None or r.returncode != 0:
                msg = (r.stderr or r.stdout).strip() if r else "did not run"
                problems.append(f"herald check-config rejects the rendered config: {msg}")
        return problems


def env_key(name):
    """HERALD_KAFKA_SASL_PASSWORD -> kafka.sasl.password; HERALD_REDIS_URL -> redis.url."""
    rest = name[len("HERALD_"):]
    if rest.startswith("KAFKA_"):
        return "kafka." + rest[len("KAFKA_"):].lower().replace("_", ".")
    for k in KNOWN_KEYS:
        if k.upper().replace(".", "_") == rest:
            return k
    return rest.lower()


def container_env(container):
    """The container's environment as herald would see it, Secrets replaced by placeholders."""
    env = {}
    for e in container.get("env") or []:
        if "value" in e:
            v = str(e["value"])
            v = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), v)
        elif "secretKeyRef" in (e.get("valueFrom") or {}):
            # A Secret holding the whole Redis URL holds a URL.
            v = "redis://:placeholder@redis:6379/0" if e["name"] == "HERALD_REDIS_URL" else "placeholder"
        else:
            v = "placeholder"
        env[e["name"]] = v
    return env


# ------------------------------------------------------ object checks

def check_release(rel, values, oracle):
    """Every invariant of one rendered release; returns a list of problems."""
    problems = []

    def need(cond, msg):
        if not cond:
            problems.append(msg)

    kinds = [o.get("kind") for o in rel.objects]
    for src, text, obj in rel.docs:
        need("<no value>" not in text, f"{src}: \"<no value>\" in the output")
        md = obj.get("metadata") or {}
        lbl = md.get("labels") or {}
        need(lbl.get("app.kubernetes.io/managed-by") == "Helm" and lbl.get("app.kubernetes.io/instance"),
             f"{src}: {obj.get('kind')} lacks the standard labels")

    dep = rel.deployment()
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    c = rel.container()
    pod_labels = pod["metadata"].get("labels") or {}
    need(labels_match(dep["spec"]["selector"]["matchLabels"], pod_labels),
         "Deployment selector does not match its pod labels")

    # Security.
    psc, csc = spec.get("securityContext") or {}, c.get("securityContext") or {}
    need(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True, "runAsNonRoot is not set")
    need((csc.get("runAsUser", psc.get("runAsUser")) or 0) != 0, "the container runs as UID 0")
    need(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true")
    need(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
    need(csc.get("privileged") in (None, False), "the container is privileged")
    caps = csc.get("capabilities") or {}
    need("ALL" in (caps.get("drop") or []), "capabilities do not drop ALL")
    need(not caps.get("add"), f"capabilities add {caps.get('add')}")
    need(spec.get("enableServiceLinks") is False, "enableServiceLinks is not false")
    need(spec.get("automountServiceAccountToken") is False, "the service account token is mounted")
    need(spec.get("hostNetwork") in (None, False), "hostNetwork is set")

    # Invocation and config mount.
    need(c.get("args") == ["--config", "/etc/herald/herald.conf"] and not c.get("command"),
         f"container args {c.get('args')}, command {c.get('command')}: expected the image's "
         "`herald run` with --config /etc/herald/herald.conf")
    cm = rel.one("ConfigMap")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
    vols = {v["name"]: v for v in spec.get("volumes") or []}
    cfg_mount = mounts.get("/etc/herald")
    need(cfg_mount and (vols.get(cfg_mount["name"], {}).get("configMap") or {}).get("name")
         == cm["metadata"]["name"], "/etc/herald is not the ConfigMap")
    for mpath, m in mounts.items():
        need(m["name"] in vols, f"volumeMount {mpath} names no volume")

    # Probes on the real port and paths.
    listen = rel.conf_get("http.listen")
    m = re.search(r":(\d+)$", listen or "")
    need(m, f"http.listen {listen!r} has no port")
    listen_port = int(m.group(1)) if m else None
    ports = {p.get("name"): p for p in c.get("ports") or []}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                        ("startupProbe", "/healthz")):
        pr = c.get(probe)
        if pr is None:
            need(probe == "startupProbe", f"{probe} is missing")
            continue
        hg = pr.get("httpGet") or {}
        need(hg.get("path") == path, f"{probe} path is {hg.get('path')!r}, herald serves {path}")
        port = hg.get("port")
        if isinstance(port, str):
            need(port in ports, f"{probe} port {port!r} is not a named container port")
            port = (ports.get(port) or {}).get("containerPort")
        need(port == listen_port, f"{probe} port {port} is not http.listen's port {listen_port}")
    need("http" in ports and ports["http"].get("containerPort") == listen_port,
         f"container port http is {ports.get('http')}, http.listen says {listen_port}")

    # Grace period above the drain deadline.
    tgps = spec.get("terminationGracePeriodSeconds")
    drain_s = -(-duration_ms(rel.conf_get("shutdown.timeout")) // 1000)
    need(isinstance(tgps, int) and tgps > drain_s,
         f"terminationGracePeriodSeconds {tgps} is not above shutdown.timeout ({drain_s}s)")

    # Config checksum.
    ann = pod["metadata"].get("annotations") or {}
    need(re.fullmatch(r"[0-9a-f]{64}", str(ann.get("checksum/config", ""))),
         "pod annotation checksum/config is missing or not a sha256")

    # herald.conf keys and the HERALD_* environment.
    env = container_env(c)
    problems += oracle.check(rel.conf_text(), env)
    conf = rel.conf()
    for e in c.get("env") or []:
        if SECRETISH.search(e["name"].lower()) or e["name"] in ("HERALD_REDIS_URL",):
            if e["name"] == "HERALD_REDIS_URL" and "value" in e:
                need("$(" in e["value"], "HERALD_REDIS_URL is a literal value, not from a Secret")
                ref = re.findall(r"\$\((\w+)\)", e["value"])
                names = [x["name"] for x in c["env"]]
                for r in ref:
                    need(r in names and names.index(r) < names.index(e["name"]),
                         f"HERALD_REDIS_URL uses $({r}) before it is defined")
            else:
                need("secretKeyRef" in (e.get("valueFrom") or {}),
                     f"env {e['name']} does not come from a Secret")
    need(not [k for k in conf if k == "redis.url" and "@" in conf[k]], "redis.url in the ConfigMap has credentials")
    if "HERALD_REDIS_URL" in env:
        need("redis.url" not in conf, "redis.url is both in the ConfigMap and the environment")
    else:
        need(conf.get("redis.url", "").startswith("redis://"), "the ConfigMap has no redis.url")

    # Kafka TLS files point into the mounted Secret volume.
    for key, fname in (("kafka.ssl.ca.location", "ca.crt"), ("kafka.ssl.certificate.location", "client.crt"),
                       ("kafka.ssl.key.location", "client.key")):
        if key not in conf:
            continue
        d, _, f = conf[key].rpartition("/")
        mt = mounts.get(d)
        need(mt is not None, f"{key} = {conf[key]}: nothing is mounted at {d}")
        if mt:
            vol = vols.get(mt["name"], {})
            paths = [i["path"] for s in (vol.get("projected") or {}).get("sources", [])
                     for i in (s.get("secret") or {}).get("items", [])]
            need(f in paths, f"{key} = {conf[key]}: the volume has no {f} (has {paths})")
            need(mt.get("readOnly") is True, f"the Secret volume at {d} is not read-only")
    if (values["kafka"]["sasl"]["enabled"]):
        need(conf.get("kafka.security.protocol", "").startswith("SASL_"), "SASL enabled but security.protocol "
             f"is {conf.get('kafka.security.protocol')}")
        need("HERALD_KAFKA_SASL_PASSWORD" in env, "SASL enabled but no HERALD_KAFKA_SASL_PASSWORD")

    # Service.
    svc = rel.one("Service")
    need(labels_match(svc["spec"]["selector"], pod_labels), "Service selector does not match the pods")
    sp = {p["name"]: p for p in svc["spec"]["ports"]}
    need("metrics" in sp, "Service has no port named metrics")
    if "metrics" in sp:
        tp = sp["metrics"].get("targetPort")
        tp_num = ports.get(tp, {}).get("containerPort") if isinstance(tp, str) else tp
        need(tp_num == listen_port, f"Service targetPort {tp} is not http.listen's port {listen_port}")
        need(sp["metrics"]["port"] == values["service"]["port"],
             f"Service port {sp['metrics']['port']} is not service.port {values['service']['port']}")

    # Optional objects exactly when enabled.
    keda_on = values["keda"]["enabled"]
    hpa_on = values["autoscaling"]["enabled"] and not keda_on
    expect = {
        "HorizontalPodAutoscaler": hpa_on,
        "ScaledObject": keda_on,
        "PodDisruptionBudget": values["podDisruptionBudget"]["enabled"],
        "ServiceMonitor": values["serviceMonitor"]["enabled"],
        "NetworkPolicy": values["networkPolicy"]["enabled"],
        "ServiceAccount": values["serviceAccount"]["create"],
    }
    for kind, on in expect.items():
        need(kinds.count(kind) == (1 if on else 0),
             f"{kind}: rendered {kinds.count(kind)}, expected {1 if on else 0}")
    need(("replicas" in dep["spec"]) == (not (hpa_on or keda_on)),
         "Deployment.spec.replicas must be set exactly when no autoscaler owns it")
    if not (hpa_on or keda_on):
        need(dep["spec"].get("replicas") == values["replicaCount"], "replicas is not replicaCount")

    if hpa_on and "HorizontalPodAutoscaler" in kinds:
        hpa = rel.one("HorizontalPodAutoscaler")
        need(hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"], "HPA targets another object")
        need(hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], "HPA minReplicas > maxReplicas")
    if values["podDisruptionBudget"]["enabled"] and "PodDisruptionBudget" in kinds:
        pdb = rel.one("PodDisruptionBudget")
        need(labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels), "PDB selects other pods")
        need(("maxUnavailable" in pdb["spec"]) != ("minAvailable" in pdb["spec"]),
             "PDB needs exactly one of maxUnavailable and minAvailable")
    if keda_on and "ScaledObject" in kinds:
        problems += check_keda(rel, values, dep, env)
    if values["serviceMonitor"]["enabled"] and "ServiceMonitor" in kinds:
        sm = rel.one("ServiceMonitor")
        need(labels_match(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]),
             "ServiceMonitor does not select the Service")
        eps = sm["spec"]["endpoints"]
        need(eps and all(e.get("port") in sp and e.get("path") == "/metrics" for e in eps),
             f"ServiceMonitor endpoints {eps} do not scrape the Service's metrics port at /metrics")
    if values["networkPolicy"]["enabled"] and "NetworkPolicy" in kinds:
        problems += check_networkpolicy(rel.one("NetworkPolicy"), pod_labels, ports)

    need("sit idle" in rel.notes, "NOTES.txt does not say that replicas beyond the partition count sit idle")
    return problems


def expected_topics(rel, values):
    events = [t.strip() for t in rel.conf_get("topics.events").split(",") if t.strip()]
    if values["keda"].get("retryTopics"):
        retry = list(values["keda"]["retryTopics"])
    else:
        prefix = rel.conf_get("topics.retry_prefix")
        retry = []
        for d in rel.conf_get("retry.schedule").split(","):
            t = prefix + duration_label(duration_ms(d))
            if t not in retry:
                retry.append(t)
    return events, retry


def check_keda(rel, values, dep, env):
    problems = []
    so = rel.one("ScaledObject")
    if so["spec"]["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
        problems.append("ScaledObject targets another Deployment")
    kafka = [t for t in so["spec"]["triggers"] if t["type"] == "kafka"]
    events, retry = expected_topics(rel, values)
    got = [t["metadata"].get("topic") for t in kafka]
    if any(e.startswith("^") for e in events):
        if got != [None]:
            problems.append(f"with a regex events topic expected one trigger without topic, got {got}")
    elif got != events + retry:
        problems.append(f"KEDA trigger topics {got} != events {events} + retry tiers {retry}")
    group = rel.conf_get("kafka.group.id")
    servers = rel.conf_get("kafka.bootstrap.servers")
    for t in kafka:
        md = t["metadata"]
        if md.get("consumerGroup") != group:
            problems.append(f"trigger {md.get('topic')}: consumerGroup {md.get('consumerGroup')!r} != {group!r}")
        if md.get("bootstrapServers") != servers:
            problems.append(f"trigger {md.get('topic')}: bootstrapServers {md.get('bootstrapServers')!r}")
        if not all(isinstance(v, str) for v in md.values()):
            problems.append(f"trigger {md.get('topic')}: KEDA metadata values must be strings: {md}")
    sasl = values["kafka"]["sasl"]
    if sasl["enabled"]:
        ta = rel.of_kind("TriggerAuthentication")
        refs = {t.get("authenticationRef", {}).get("name") for t in kafka}
        if len(ta) != 1 or refs != {ta[0]["metadata"]["name"]}:
            problems.append("SASL enabled but the triggers do not reference one TriggerAuthentication")
        else:
            params = {s["parameter"]: s for s in ta[0]["spec"].get("secretTargetRef", [])}
            pw = params.get("password", {})
            if (pw.get("name"), pw.get("key")) != (sasl["passwordSecret"]["name"], sasl["passwordSecret"]["key"]):
                problems.append(f"TriggerAuthentication password {pw} is not kafka.sasl.passwordSecret")
            envp = {e["parameter"]: e for e in ta[0]["spec"].get("env", [])}
            if envp.get("username", {}).get("name") not in env:
                problems.append("TriggerAuthentication username refers to no container variable")
        for t in kafka:
            if t["metadata"].get("sasl") not in ("plaintext", "scram_sha256", "scram_sha512"):
                problems.append(f"trigger {t['metadata'].get('topic')}: sasl {t['metadata'].get('sasl')!r}")
    return problems


def check_networkpolicy(np, pod_labels, ports):
    problems = []
    spec = np["spec"]
    if not labels_match(spec["podSelector"].get("matchLabels"), pod_labels):
        problems.append("NetworkPolicy does not select the herald pods")
    if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
        problems.append(f"policyTypes {spec.get('policyTypes')}: expected Ingress and Egress")
    ing_ports = [p.get("port") for r in spec.get("ingress", []) for p in r.get("ports", [])]
    if "http" not in ing_ports and ports.get("http", {}).get("containerPort") not in ing_ports:
        problems.append("ingress does not allow the metrics port")
    egress = spec.get("egress", [])
    if not any(p.get("port") == 53 and p.get("protocol") == "UDP" for r in egress for p in r.get("ports", [])):
        problems.append("egress does not allow DNS")

    def allowed(addr):
        ip = ipaddress.ip_address(addr)
        for rule in egress:
            for peer in rule.get("to") or [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]:
                blk = peer.get("ipBlock")
                if not blk:
                    continue
                net = ipaddress.ip_network(blk["cidr"])
                if ip.version == net.version and ip in net and not any(
                        ip in ipaddress.ip_network(e) for e in blk.get("except", [])
                        if ipaddress.ip_network(e).version == ip.version):
                    return True
        return False

    # Metadata and link-local: no rule at all may allow them.
    for addr in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "fe80::1"):
        if allowed(addr):
            problems.append(f"egress allows {addr} (cloud metadata / link-local)")
    # Private ranges: the public-internet rule must exclude them (extra rules may allow a subnet).
    public = [blk for r in egress for peer in r.get("to") or [] for blk in [peer.get("ipBlock")]
              if blk and blk["cidr"] in ("0.0.0.0/0", "::/0")]
    v4 = [b for b in public if b["cidr"] == "0.0.0.0/0"]
    if not v4:
        problems.append("no egress rule for public IPv4 webhook targets")
    for b in public:
        exc = [ipaddress.ip_network(e) for e in b.get("except", [])]
        samples = (["10.1.2.3", "172.16.5.4", "172.31.255.1", "192.168.1.1", "100.64.0.1", "169.254.169.254",
                    "127.0.0.1"] if b["cidr"] == "0.0.0.0/0" else ["fd00::1", "fc00::1", "fe80::1", "::ffff:10.0.0.1"])
        for s in samples:
            ip = ipaddress.ip_address(s)
            if not any(ip.version == e.version and ip in e for e in exc):
                problems.append(f"the {b['cidr']} egress rule does not exclude {s}")
    if not allowed("8.8.8.8") and v4:
        problems.append("public IPv4 webhook targets (8.8.8.8) are not allowed")
    return problems


# ------------------------------------------------------------- the tests

def lint_sources():
    files = [CHART / "Chart.yaml", CHART / "values.yaml"] + sorted((CHART / "ci").glob("*.yaml"))
    r = subprocess.run(["yamllint", "-f", "parsable", "-d", YAMLLINT_SOURCE] + [str(f) for f in files],
                       capture_output=True, text=True)
    return [l for l in (r.stdout + r.stderr).splitlines() if l.strip()] if r.returncode else []


def lint_rendered(rel, label):
    text = "".join(f"---\n{t}\n" for _, t, _ in rel.docs)
    r = subprocess.run(["yamllint", "-f", "parsable", "-d", YAMLLINT_RENDERED, "-"], input=text,
                       capture_output=True, text=True)
    return [f"{label}: {l}" for l in r.stdout.splitlines() if "[error]" in l]


def chart_yaml_ok():
    meta = load_yaml((CHART / "Chart.yaml").read_text())
    problems = []
    if meta.get("apiVersion") != "v2":
        problems.append("Chart.yaml apiVersion is not v2")
    for k in ("name", "version", "appVersion", "kubeVersion", "description"):
        if not meta.get(k):
            problems.append(f"Chart.yaml lacks {k}")
    if meta.get("name") != "herald":
        problems.append("Chart.yaml name is not herald")
    files = {p.name for p in (CHART / "templates").iterdir()}
    for f in ("_helpers.tpl", "deployment.yaml", "configmap.yaml", "service.yaml", "hpa.yaml",
              "keda-scaledobject.yaml", "pdb.yaml", "servicemonitor.yaml", "networkpolicy.yaml",
              "serviceaccount.yaml", "NOTES.txt"):
        if f not in files:
            problems.append(f"templates/{f} is missing")
    readme = (CHART / "README.md").read_text()
    if "replicas beyond the partition count sit idle" not in readme.lower():
        problems.append("README.md does not say that replicas beyond the partition count sit idle")
    return problems


FREEFORM = {"config", "podSecurityContext", "securityContext", "resources", "strategy", "autoscaling.behavior",
            "networkPolicy.dns.to", "networkPolicy.kafka.to", "networkPolicy.redis.to", "keda.advanced",
            "keda.fallback", "startupProbe", "livenessProbe", "readinessProbe"}


def leaf_paths(d, prefix=""):
    for k, v in d.items():
        p = f"{prefix}{k}"
        if isinstance(v, dict) and v and p not in FREEFORM:
            yield from leaf_paths(v, p + ".")
        else:
            yield p


def readme_documents_values(values):
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"`([A-Za-z][\w.]*)(?:\.\*)?`", readme))
    # "`a.b.name` / `.key`" rows document a.b.key too; "`a` / `b`" rows document siblings.
    for row in re.findall(r"^\| (`[^|]+`) \|", readme, flags=re.M):
        names = re.findall(r"`([^`]+)`", row)
        base = names[0].rsplit(".", 1)[0] if "." in names[0] else ""
        for n in names[1:]:
            documented.add(base + n if n.startswith(".") else n)
    missing = [p for p in leaf_paths(values) if p not in documented and p.split(".")[0] + ".*" not in readme
               and not any(p.startswith(f + ".") for f in FREEFORM)]
    return [f"README.md values table lacks `{p}`" for p in missing]


# Bad values the schema must reject (merged over values.yaml).
BAD_VALUES = [
    ("unknown top-level key", {"replicas": 3}),
    ("unknown config key", {"config": {"delivery.max_inflight": 10}}),
    ("secret in the ConfigMap", {"config": {"kafka.sasl.password": "hunter2"}}),
    ("redis.url in config", {"config": {"redis.url": "redis://r:6379/0"}}),
    ("duration without unit", {"config": {"delivery.timeout": 15}}),
    ("duration with a space", {"config": {"shutdown.timeout": "30 s"}}),
    ("unknown log level", {"config": {"log.level": "verbose"}}),
    ("empty http.listen", {"config": {"http.listen": ""}}),
    ("out-of-range jitter", {"config": {"retry.jitter": 80}}),
    ("writable root filesystem", {"securityContext": {"readOnlyRootFilesystem": False}}),
    ("capabilities not dropped", {"securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}),
    ("privilege escalation", {"securityContext": {"allowPrivilegeEscalation": True}}),
    ("unsupported SASL mechanism", {"kafka": {"sasl": {"mechanism": "GSSAPI"}}}),
    ("password in redis.url", {"redis": {"url": "redis://:hunter2@redis:6379/0"}}),
    ("probe handler override", {"livenessProbe": {"httpGet": {"path": "/", "port": 80}}}),
    ("service port out of range", {"service": {"port": 70000}}),
    ("bad KEDA offset policy", {"keda": {"offsetResetPolicy": "middle"}}),
    ("bad image digest", {"image": {"digest": "latest"}}),
]


def schema_tests(res, renderer, base_values, all_options, oracle):
    schema = json.loads((CHART / "values.schema.json").read_text())

    def meta():
        jsonschema.Draft7Validator.check_schema(schema)
        if schema.get("additionalProperties") is not False:
            return ["values.schema.json does not set additionalProperties: false at the top level"]
    res.run("values.schema.json is a valid draft-07 schema, strict at the top", meta)
    validator = jsonschema.Draft7Validator(schema)

    def valid(v):
        return [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in validator.iter_errors(v)]
    res.run("values.yaml validates against the schema", valid, base_values)

    def schema_knows_herald_keys():
        props = set(schema["properties"]["config"]["properties"])
        # redis.url is set through redis.url / the Secret references, never in config.
        want = {k for k in oracle.keys if k != "redis.url"}
        problems = [f"config key \"{k}\" (from {oracle.keys_from}) is missing from values.schema.json"
                    for k in sorted(want - props)]
        problems += [f"values.schema.json allows config key \"{k}\", which herald does not accept"
                     for k in sorted(props - want) if not k.startswith("kafka.")]
        return problems
    res.run("values.schema.json config keys are exactly the keys herald accepts", schema_knows_herald_keys)
    res.run("values.yaml + ci/all-options-values.yaml validates against the schema", valid,
            deep_merge(base_values, all_options))

    for desc, bad in BAD_VALUES:
        def rejected(bad=bad):
            problems = []
            if not list(validator.iter_errors(deep_merge(base_values, bad))):
                problems.append("jsonschema accepts it")
            ok, err = renderer.run([bad])
            if ok:
                problems.append("the renderer (gojsonschema, as helm) accepts it")
            elif "schema" not in err:
                problems.append(f"the renderer fails, but not on the schema: {err}")
            return problems
        res.run(f"schema rejects: {desc}", rejected)


def scenario_tests(res, renderer, base_values, oracle):
    def scenario(desc, override, extra=None):
        def t():
            values = deep_merge(base_values, override)
            rel = renderer.render([override])
            problems = check_release(rel, values, oracle)
            if extra:
                problems += extra(rel, values) or []
            return problems
        res.run(f"scenario: {desc}", t)

    scenario("fixed replicas, no autoscaler, no PDB",
             {"autoscaling": {"enabled": False}, "podDisruptionBudget": {"enabled": False}, "replicaCount": 3})
    scenario("Redis URL from a Secret",
             {"redis": {"urlSecret": {"name": "herald-redis", "key": "url"}}},
             lambda rel, v: [] if any(e["name"] == "HERALD_REDIS_URL" and e["valueFrom"]["secretKeyRef"]["name"]
                                      == "herald-redis" for e in rel.container()["env"])
             else ["HERALD_REDIS_URL does not come from Secret herald-redis"])
    scenario("http.listen on another port follows into probes and Service",
             {"config": {"http.listen": "[::]:9999"}},
             lambda rel, v: [] if rel.container()["ports"][0]["containerPort"] == 9999 else ["port is not 9999"])
    scenario("longer shutdown.timeout lengthens the grace period",
             {"config": {"shutdown.timeout": "2m"}},
             lambda rel, v: [] if rel.deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
             == 135 else ["terminationGracePeriodSeconds is not 120 + 15"])
    scenario("config key dropped with null falls back to herald's default",
             {"config": {"shutdown.timeout": None, "http.listen": None}},
             lambda rel, v: [] if "shutdown.timeout" not in rel.conf() and
             rel.container()["ports"][0]["containerPort"] == 9464 else ["null did not drop the keys"])
    scenario("regex events topic: one KEDA trigger for the whole group",
             {"keda": {"enabled": True}, "config": {"topics.events": "^tenant\\..*"}})
    scenario("KEDA with explicit retry topics and SASL without TLS",
             {"keda": {"enabled": True, "retryTopics": ["herald.retry.5s"]},
              "kafka": {"sasl": {"enabled": True, "username": "u", "mechanism": "PLAIN",
                                 "passwordSecret": {"name": "kafka-pw", "key": "pw"}}}},
             lambda rel, v: [] if rel.conf().get("kafka.security.protocol") == "SASL_PLAINTEXT"
             else ["security.protocol is not SASL_PLAINTEXT"])
    scenario("mutual TLS without SASL",
             {"kafka": {"tls": {"enabled": True, "clientCert": {"name": "kafka-client", "certKey": "tls.crt",
                                                                "keyKey": "tls.key"}}}},
             lambda rel, v: [] if rel.conf().get("kafka.security.protocol") == "SSL" and
             "kafka.ssl.key.location" in rel.conf() and "kafka.ssl.ca.location" not in rel.conf()
             else [f"TLS keys wrong: {rel.conf()}"])
    scenario("release name containing the chart name",
             {"fullnameOverride": "", "nameOverride": "herald"},
             lambda rel, v: [] if rel.deployment()["metadata"]["name"] == "herald" else ["unexpected name"])

    def checksum():
        def ck(override):
            rel = renderer.render([override] if override else [])
            return rel.deployment()["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        base = ck(None)
        problems = []
        if ck({"config": {"log.level": "debug"}}) == base:
            problems.append("checksum/config did not change when config.log.level changed")
        if ck({"redis": {"url": "redis://other:6379/1"}}) == base:
            problems.append("checksum/config did not change when redis.url changed")
        if ck({"replicaCount": 5, "podAnnotations": {"a": "b"}, "autoscaling": {"enabled": False}}) != base:
            problems.append("checksum/config changed although the config did not")
        return problems
    res.run("checksum/config moves with the config and only with it", checksum)

    def failures():
        cases = [
            ("grace period not above the drain", {"terminationGracePeriodSeconds": 20}, "must exceed"),
            ("SASL without a password Secret", {"kafka": {"sasl": {"enabled": True, "username": "u"}}},
             "passwordSecret"),
            ("HPA without a target", {"autoscaling": {"targetCPUUtilizationPercentage": None}}, "autoscaling"),
        ]
        problems = []
        for desc, override, msg in cases:
            ok, err = renderer.run([override])
            if ok:
                problems.append(f"{desc}: rendered without error")
            elif msg not in err:
                problems.append(f"{desc}: failed without naming {msg!r}: {err}")
        return problems
    res.run("bad combinations stop the render with a clear message", failures)


# Deliberate breakage of the chart that the checks must report.
BREAKAGE = [
    ("probe port changed", "deployment.yaml", "path: /healthz\n              port: http",
     "path: /healthz\n              port: 8080", "port 8080"),
    ("readiness path changed", "deployment.yaml", "path: /readyz", "path: /ready", "readinessProbe path"),
    ("container port off http.listen", "deployment.yaml",
     "containerPort: {{ include \"herald.listenPort\" . }}", "containerPort: 8080", "container port http"),
    ("service links on", "deployment.yaml", "enableServiceLinks: false", "enableServiceLinks: true",
     "enableServiceLinks"),
    ("grace period fixed at 10s", "deployment.yaml",
     "terminationGracePeriodSeconds: {{ include \"herald.terminationGracePeriodSeconds\" . }}",
     "terminationGracePeriodSeconds: 10", "terminationGracePeriodSeconds"),
    ("checksum annotation removed", "deployment.yaml", "checksum/config:", "checksum/other:", "checksum/config"),
    ("unknown key in herald.conf", "configmap.yaml", "{{- include \"herald.confFile\" . | nindent 4 }}",
     "{{- include \"herald.confFile\" . | nindent 4 }}\n    delivery.bogus = 1", "delivery.bogus"),
    ("HPA rendered unconditionally", "hpa.yaml", "{{- if and .Values.autoscaling.enabled (not .Values.keda.enabled) }}",
     "{{- if true }}", "HorizontalPodAutoscaler"),
    ("metadata address allowed", "networkpolicy.yaml", "{{- with $np.webhooks.ipv4Except }}",
     "{{- with without $np.webhooks.ipv4Except \"169.254.0.0/16\" }}", "169.254.169.254"),
    ("private ranges allowed", "networkpolicy.yaml", "{{- with $np.webhooks.ipv4Except }}",
     "{{- with list \"169.254.0.0/16\" }}", "does not exclude 10.1.2.3"),
    ("IPv6 link-local allowed", "networkpolicy.yaml", "{{- with $np.webhooks.ipv6Except }}",
     "{{- with list \"fc00::/7\" }}", "fe80::1"),
    ("retry topics missing from KEDA", "keda-scaledobject.yaml",
     "{{- range splitList \",\" (include \"herald.retryTopics\" .) }}", "{{- range list }}", "retry tiers"),
    ("root filesystem writable", "deployment.yaml", "{{- toYaml .Values.securityContext | nindent 12 }}",
     "{{- toYaml (set (deepCopy .Values.securityContext) \"readOnlyRootFilesystem\" false) | nindent 12 }}",
     "readOnlyRootFilesystem"),
]


def breakage_tests(res, renderer, base_values, all_options, oracle, workdir):
    for desc, fname, old, new, expect in BREAKAGE:
        def t(fname=fname, old=old, new=new, expect=expect):
            broken = Path(tempfile.mkdtemp(dir=workdir)) / "herald"
            shutil.copytree(CHART, broken)
            p = broken / "templates" / fname
            text = p.read_text()
            if old not in text:
                return [f"the breakage does not apply: {old!r} is not in {fname}"]
            p.write_text(text.replace(old, new))
            found = []
            for override, values in (([], base_values),
                                      ([str(CHART / "ci" / "all-options-values.yaml")],
                                       deep_merge(base_values, all_options))):
                ok, out = renderer.run(override, chart=broken)
                if not ok:
                    found.append(out)
                    continue
                found += check_release(Release(out), values, oracle)
            if not any(expect in f for f in found):
                return [f"not detected (expected a problem mentioning {expect!r}; got {found or 'none'})"]
            return []
        res.run(f"checks catch a broken chart: {desc}", t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--renderer", help="path of the built tests/helm/render binary")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    for tool in ("yamllint",) + (() if args.renderer else ("go",)):
        if not shutil.which(tool):
            sys.exit(f"\"{tool}\" is not installed: run scripts/check-helm, which installs it")

    res = Results(args.verbose)
    with tempfile.TemporaryDirectory(prefix="herald-chart-") as workdir:
        renderer = Renderer(args.renderer or build_renderer(workdir), workdir)
        oracle = KeyOracle(workdir)
        base_values = load_yaml((CHART / "values.yaml").read_text())
        all_options = load_yaml((CHART / "ci" / "all-options-values.yaml").read_text())

        res.run("Chart.yaml, templates and README are in place", chart_yaml_ok)
        res.run("yamllint: Chart.yaml, values.yaml, ci/*.yaml", lint_sources)
        res.run("README.md documents every value", readme_documents_values, base_values)
        schema_tests(res, renderer, base_values, all_options, oracle)

        for label, overrides, values in (
                ("default values", [], base_values),
                ("ci/all-options-values.yaml", [str(CHART / "ci" / "all-options-values.yaml")],
                 deep_merge(base_values, all_options))):
            holder = {}

            def render(overrides=overrides, holder=holder):
                holder["rel"] = renderer.render(overrides)
                srcs = {s.rsplit("/", 1)[-1] for s, _, _ in holder["rel"].docs}
                if args.verbose:
                    print(f"      rendered: {sorted(srcs)}")
            res.run(f"{label}: every template renders and parses as YAML", render)
            if "rel" not in holder:
                continue
            rel = holder["rel"]
            res.run(f"{label}: yamllint of the rendered manifests", lint_rendered, rel, label)
            res.run(f"{label}: rendered objects pass every check", check_release, rel, values, oracle)

        def all_optional_rendered():
            rel = renderer.render([str(CHART / "ci" / "all-options-values.yaml")])
            srcs = {s.rsplit("/", 1)[-1] for s, _, _ in rel.docs}
            tmpl = {p.name for p in (CHART / "templates").iterdir()
                    if not p.name.startswith("_") and p.name != "NOTES.txt"}
            # The HPA is KEDA's job there; the default values render it.
            missing = tmpl - srcs - {"hpa.yaml"}
            problems = [f"ci/all-options-values.yaml leaves {sorted(missing)} unrendered"] if missing else []
            if not renderer.render([]).of_kind("HorizontalPodAutoscaler"):
                problems.append("the default values render no HPA")
            if not rel.of_kind("TriggerAuthentication"):
                problems.append("ci/all-options-values.yaml renders no TriggerAuthentication")
            return problems
        res.run("every template renders under the default or the all-options values", all_optional_rendered)

        scenario_tests(res, renderer, base_values, oracle)
        breakage_tests(res, renderer, base_values, all_options, oracle, workdir)

    print(f"{res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
