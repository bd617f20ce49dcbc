#!/usr/bin/env python3
"""Static checks of the deployment kit against the server's own list of settings.

Usage: check_deploy.py --server BIN --root SOURCE_DIR CHECK...
  k8s      every manifest under deploy/k8s loads; probes, ports, grace period, settings,
           security context, labels and selectors, canary steps, kustomizations
  docker   deploy/docker/Dockerfile: stages, user, entrypoint, ports, settings, apt packages
  runbook  docs/RUNBOOK.md names every setting `tickwire-server --help` lists, its "applies"
           column says SIGHUP exactly for those --help marks "(reloads on SIGHUP)", and it
           has the sections operators look for

The settings come from `tickwire-server --help` (each option ends its help with [ENV_NAME] and
its default), so the checks follow the server as settings are added. Prints every problem and
exits 1 when there is one.
"""

import argparse
import glob
import math
import os
import re
import subprocess
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("check_deploy.py: the Python yaml module is missing (Debian: python3-yaml; "
             "run scripts/setup.sh)")

PROBLEMS = []
# Settings whose --help entry says "(reloads on SIGHUP)" (filled by server_settings).
RELOADABLE = set()


def problem(text):
    PROBLEMS.append(text)


def server_settings(server):
    """{ENV_NAME: default text or None} from tickwire-server --help."""
    out = subprocess.run([server, "--help"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    # One option per entry; CLI11 puts a long option's help on the next, indented line.
    entries = []
    for line in out.splitlines():
        if line.startswith("  -"):
            entries.append(line.strip())
        elif entries and line.startswith("    "):
            entries[-1] += " " + line.strip()
    settings = {}
    for entry in entries:
        m = re.match(r"--[a-z0-9-]+ .*\[([A-Z][A-Z0-9_]*)\](?: \(default ([^)]*)\))?$", entry)
        if m:
            settings[m.group(1)] = m.group(2)
            if "(reloads on SIGHUP)" in entry:
                RELOADABLE.add(m.group(1))
    if len(settings) < 10:
        sys.exit(f"check_deploy.py: only {len(settings)} settings in {server} --help:\n{out}")
    return settings


def duration_seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        try:
            return [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            problem(f"{path}: not valid YAML: {e}")
            return []


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------------------------------------
# k8s


def check_k8s(root, settings):
    k8s = os.path.join(root, "deploy", "k8s")
    files = sorted(glob.glob(os.path.join(k8s, "**", "*.yaml"), recursive=True))
    if not files:
        problem(f"no manifests under {k8s}")
        return
    objects = []  # (path, doc)
    for path in files:
        for doc in load_yaml_docs(path):
            for key in ("apiVersion", "kind"):
                if key not in doc:
                    problem(f"{path}: a document without {key}")
            objects.append((path, doc))

    def of_kind(kind):
        return [(p, d) for p, d in objects if d.get("kind") == kind]

    check_kustomizations(k8s, of_kind("Kustomization"))

    configmaps = {d["metadata"]["name"]: d for _, d in of_kind("ConfigMap")}
    secrets = {d["metadata"]["name"]: d for _, d in of_kind("Secret")}
    for name, cm in configmaps.items():
        for key in cm.get("data", {}):
            if key not in settings:
                problem(f"ConfigMap {name}: {key} is not a tickwire setting")
        for key in ("STREAM_PASS", "STREAM_USER"):
            if key in cm.get("data", {}):
                problem(f"ConfigMap {name}: {key} belongs in a Secret")
    for name, secret in secrets.items():
        for key in list(secret.get("stringData", {})) + list(secret.get("data", {})):
            if key not in settings:
                problem(f"Secret {name}: {key} is not a tickwire setting")

    deployments = of_kind("Deployment")
    if len(deployments) < 2:
        problem("expected the stable and the canary Deployment")
    pod_labels = []
    for path, dep in deployments:
        labels = check_deployment(path, dep, settings, configmaps, secrets)
        if labels is not None:
            pod_labels.append((dep["metadata"]["name"], labels))
    check_canary_matches_stable(deployments)

    # Selectors: every Service and the PDB select the pods of every Deployment (stable and
    # canary); each Deployment's own selector selects only its own pods.
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        for path, obj in of_kind(kind):
            spec = obj["spec"]
            sel = spec.get("selector") or spec.get("podSelector") or {}
            sel = sel.get("matchLabels", sel)
            for dep_name, labels in pod_labels:
                if not sel or not matches(sel, labels):
                    problem(f"{path}: {kind} {obj['metadata']['name']} does not select the pods "
                            f"of Deployment {dep_name}")
    for _, dep in deployments:
        own = dep["spec"]["selector"]["matchLabels"]
        for other_name, labels in pod_labels:
            if other_name != dep["metadata"]["name"] and matches(own, labels):
                problem(f"Deployment {dep['metadata']['name']} would adopt the pods of "
                        f"{other_name}")

    container_ports = {}
    for _, dep in deployments:
        for c in dep["spec"]["template"]["spec"]["containers"]:
            for p in c.get("ports", []):
                container_ports[p["name"]] = p["containerPort"]
    services = of_kind("Service")
    for path, svc in services:
        for p in svc["spec"]["ports"]:
            target = p.get("targetPort")
            if isinstance(target, str) and target not in container_ports:
                problem(f"{path}: targetPort {target} is not a container port name")
    lb = [s for _, s in services if s["spec"].get("type") == "LoadBalancer"]
    if len(lb) != 1:
        problem("expected one Service of type LoadBalancer")
    for svc in lb:
        proxy = configmaps.get("tickwire-config", {}).get("data", {}).get("PROXY_PROTOCOL", "off")
        if svc["spec"].get("externalTrafficPolicy") != "Local" and proxy != "required":
            problem("the LoadBalancer Service loses client addresses: use externalTrafficPolicy "
                    "Local or PROXY_PROTOCOL=required")
        if [p.get("targetPort") for p in svc["spec"]["ports"]] != ["stream"]:
            problem("the LoadBalancer Service must expose the stream port only")
    for _, pdb in of_kind("PodDisruptionBudget"):
        spec = pdb["spec"]
        if "maxUnavailable" not in spec and "minAvailable" not in spec:
            problem("the PodDisruptionBudget sets neither maxUnavailable nor minAvailable")

    check_canary_script(k8s)


def check_kustomizations(k8s, kustomizations):
    for path, k in kustomizations:
        folder = os.path.dirname(path)
        listed = set()
        for res in k.get("resources", []):
            target = os.path.normpath(os.path.join(folder, res))
            if not os.path.exists(target):
                problem(f"{path}: resource {res} does not exist")
            listed.add(target)
        for f in glob.glob(os.path.join(folder, "*.yaml")):
            if os.path.basename(f) != "kustomization.yaml" and os.path.normpath(f) not in listed:
                problem(f"{path}: {os.path.basename(f)} is in the folder but not a resource")
    if not kustomizations:
        problem(f"no kustomization.yaml under {k8s}")


def check_deployment(path, dep, settings, configmaps, secrets):
    """Checks one Deployment; returns its pod template labels."""
    name = dep["metadata"]["name"]
    where = f"{path}: Deployment {name}"
    spec = dep["spec"]
    template = spec["template"]
    labels = template["metadata"].get("labels", {})
    if not matches(spec["selector"]["matchLabels"], labels):
        problem(f"{where}: selector does not match its pod template labels")
    pod = template["spec"]
    containers = pod["containers"]
    if len(containers) != 1:
        problem(f"{where}: expected one container")
        return labels
    c = containers[0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for required in ("stream", "metrics"):
        if required not in ports:
            problem(f"{where}: no container port named {required}")

    # The settings this container gets: ConfigMap, Secret and env entries, server defaults.
    env = {}
    sources = {"configMapRef": ("ConfigMap", configmaps), "secretRef": ("Secret", secrets)}
    for src in c.get("envFrom", []):
        for ref, (kind, objects) in sources.items():
            if ref not in src:
                continue
            obj = objects.get(src[ref]["name"])
            if obj is None:
                problem(f"{where}: envFrom {kind} {src[ref]['name']} is missing")
            else:
                env.update(obj.get("data", {}) if kind == "ConfigMap" else obj.get("stringData", {}))
    for e in c.get("env", []):
        if e["name"] not in settings:
            problem(f"{where}: env {e['name']} is not a tickwire setting")
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            sec = secrets.get(ref["name"])
            keys = {} if sec is None else {**sec.get("stringData", {}), **sec.get("data", {})}
            if ref["key"] not in keys:
                problem(f"{where}: env {e['name']} refers to {ref['name']}/{ref['key']}, "
                        "which does not exist")
            env[e["name"]] = keys.get(ref["key"], "")
        else:
            env[e["name"]] = e.get("value", "")

    def setting(key):
        return env.get(key, settings.get(key))

    if "stream" in ports and port_of(setting("LISTEN_ADDR")) != ports["stream"]:
        problem(f"{where}: port stream is {ports['stream']} but LISTEN_ADDR is "
                f"{setting('LISTEN_ADDR')}")
    metrics_addr = setting("METRICS_ADDR")
    if "metrics" in ports and port_of(metrics_addr) != ports["metrics"]:
        problem(f"{where}: port metrics is {ports['metrics']} but METRICS_ADDR is {metrics_addr}")
    if metrics_addr.startswith("127.") or metrics_addr.startswith("[::1]"):
        problem(f"{where}: METRICS_ADDR {metrics_addr} is loopback: the probes cannot reach it")

    for probe, path_want in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        p = c.get(probe)
        if p is None or "httpGet" not in p:
            problem(f"{where}: no {probe} with httpGet")
            continue
        get = p["httpGet"]
        if get.get("path") != path_want:
            problem(f"{where}: {probe} path is {get.get('path')}, expected {path_want}")
        if get.get("port") != "metrics" and get.get("port") != ports.get("metrics"):
            problem(f"{where}: {probe} port {get.get('port')} is not the metrics port")
        if isinstance(get.get("port"), str) and get["port"] not in ports:
            problem(f"{where}: {probe} port {get['port']} is not a container port name")

    # The grace period covers the preStop sleep and the whole drain.
    pre_stop = c.get("lifecycle", {}).get("preStop", {})
    sleep = pre_stop.get("sleep", {}).get("seconds")
    if sleep is None:
        problem(f"{where}: no preStop sleep")
        sleep = 0
    deadline = duration_seconds(setting("DRAIN_DEADLINE"))
    period = duration_seconds(setting("DRAIN_PERIOD"))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not grace > deadline + sleep:
        problem(f"{where}: terminationGracePeriodSeconds {grace} must exceed DRAIN_DEADLINE "
                f"({deadline:g} s) + preStop sleep ({sleep} s)")
    if not deadline > period:
        problem(f"{where}: DRAIN_DEADLINE must exceed DRAIN_PERIOD")
    hb_interval = duration_seconds(setting("HEARTBEAT_INTERVAL"))
    hb_timeout = duration_seconds(setting("HEARTBEAT_TIMEOUT"))
    if not hb_timeout > hb_interval:
        problem(f"{where}: HEARTBEAT_TIMEOUT must exceed HEARTBEAT_INTERVAL")

    # Hardening.
    psc = pod.get("securityContext", {})
    csc = c.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        problem(f"{where}: pod securityContext.runAsNonRoot must be true")
    if psc.get("runAsUser") != 65532:
        problem(f"{where}: runAsUser must be the image's nonroot user 65532")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problem(f"{where}: seccompProfile must be RuntimeDefault")
    if csc.get("allowPrivilegeEscalation") is not False:
        problem(f"{where}: allowPrivilegeEscalation must be false")
    if csc.get("readOnlyRootFilesystem") is not True:
        problem(f"{where}: readOnlyRootFilesystem must be true")
    if csc.get("capabilities", {}).get("drop") != ["ALL"]:
        problem(f"{where}: capabilities must drop ALL")
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in res.get(part, {}):
                problem(f"{where}: resources.{part}.{r} missing")
    workers = int(setting("WORKERS"))
    cpu_limit = str(res.get("limits", {}).get("cpu", "0"))
    cpus = int(cpu_limit[:-1]) / 1000 if cpu_limit.endswith("m") else float(cpu_limit)
    if workers == 0 or workers > max(1, math.ceil(cpus)):
        problem(f"{where}: WORKERS={workers} should match the CPU limit ({cpu_limit}): with 0 the "
                "server starts one worker per core of the node")
    ann = template["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true":
        problem(f"{where}: no prometheus.io/scrape annotation")
    if int(ann.get("prometheus.io/port", 0)) != ports.get("metrics"):
        problem(f"{where}: prometheus.io/port is not the metrics port")
    if not pod.get("topologySpreadConstraints"):
        problem(f"{where}: no topologySpreadConstraints")
    for tsc in pod.get("topologySpreadConstraints", []):
        if not matches(tsc["labelSelector"]["matchLabels"], labels):
            problem(f"{where}: a topology spread constraint does not select its own pods")
    return labels


def check_canary_matches_stable(deployments):
    by_name = {d["metadata"]["name"]: d for _, d in deployments}
    stable, canary = by_name.get("tickwire"), by_name.get("tickwire-canary")
    if stable is None or canary is None:
        problem("expected Deployments tickwire and tickwire-canary")
        return
    if canary["spec"].get("replicas") != 0:
        problem("tickwire-canary must start at 0 replicas (canary.sh scales it)")

    def normalized(dep):
        pod = yaml.safe_load(yaml.safe_dump(dep["spec"]["template"]["spec"]))
        for c in pod["containers"]:
            c.pop("image", None)
        return pod

    if normalized(stable) != normalized(canary):
        problem("the canary's pod spec differs from the stable one beyond its image")
    s_labels = stable["spec"]["template"]["metadata"]["labels"]
    c_labels = canary["spec"]["template"]["metadata"]["labels"]
    if s_labels.get("track") != "stable" or c_labels.get("track") != "canary":
        problem("pod labels must carry track: stable / track: canary")


def check_canary_script(k8s):
    script = os.path.join(k8s, "canary.sh")

    def run(*args):
        r = subprocess.run([script, "--dry-run", *args], capture_output=True, text=True,
                           timeout=30, check=False)
        if r.returncode != 0:
            problem(f"canary.sh {' '.join(args)}: exit {r.returncode}: {r.stderr}")
        return r.stdout

    def scale(out, name):
        m = re.search(rf"scale deployment/{name} --replicas=(\d+)", out)
        return int(m.group(1)) if m else None

    # A fleet of 20: the steps are exact shares, and the canary scales before the stable.
    for pct in (5, 25, 50, 100):
        out = run("--fleet", "20", "-n", "prod", "step", str(pct))
        canary, stable = scale(out, "tickwire-canary"), scale(out, "tickwire")
        if canary is None or stable is None:
            problem(f"canary.sh step {pct}: no scale commands:\n{out}")
            continue
        if canary + stable != 20 or canary * 100 != pct * 20:
            problem(f"canary.sh step {pct} on 20 pods: {canary} canary + {stable} stable")
        if out.index("tickwire-canary --replicas") > out.index("deployment/tickwire --replicas"):
            problem(f"canary.sh step {pct}: the stable fleet shrinks before the canary grows")
        if "-n prod" not in out:
            problem("canary.sh ignores -n")
    # Small fleets keep their size and get at least one canary pod.
    for fleet in (1, 3, 7):
        for pct in (5, 25, 50, 100):
            out = run("--fleet", str(fleet), "step", str(pct))
            canary, stable = scale(out, "tickwire-canary"), scale(out, "tickwire")
            if canary is None or canary + stable != fleet or canary < 1:
                problem(f"canary.sh step {pct} on {fleet} pods: {canary} + {stable}")
    out = run("--fleet", "20", "rollback")
    if out.index("deployment/tickwire --replicas=20") > out.index("tickwire-canary --replicas=0"):
        problem("canary.sh rollback: the canary goes before the stable fleet is back")
    out = run("--fleet", "20", "promote", "registry.example.com/tickwire:9")
    if "set image deployment/tickwire tickwire=registry.example.com/tickwire:9" not in out:
        problem(f"canary.sh promote does not set the stable image:\n{out}")


# ---------------------------------------------------------------------------------------------
# docker


def setup_packages(root):
    text = open(os.path.join(root, "scripts", "setup.sh"), encoding="utf-8").read()
    m = re.search(r"PACKAGES=\((.*?)\n\)", text, re.S)
    if not m:
        problem("scripts/setup.sh: no PACKAGES=( ... ) list")
        return set()
    words = set()
    for line in m.group(1).splitlines():
        words.update(line.split("#", 1)[0].split())
    return words


def check_docker(root, settings):
    path = os.path.join(root, "deploy", "docker", "Dockerfile")
    text = open(path, encoding="utf-8").read()
    # Join continuation lines into instructions.
    instructions = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instructions.append(line)
    froms = [i for i in instructions if i.upper().startswith("FROM ")]
    if len(froms) < 3:
        problem(f"{path}: expected build, collect and runtime stages")
    if "debian:12" not in text or "gcr.io/distroless/cc-debian12" not in text:
        problem(f"{path}: build on debian:12, run on gcr.io/distroless/cc-debian12")
    runtime = instructions[instructions.index(froms[-1]):]

    def last(keyword):
        found = [i for i in runtime if i.upper().startswith(keyword + " ")]
        return found[-1][len(keyword) + 1:].strip() if found else None

    if last("USER") != "nonroot:nonroot":
        problem(f"{path}: the runtime stage must run as nonroot:nonroot")
    entry = last("ENTRYPOINT")
    if entry is None or not entry.startswith("["):
        problem(f"{path}: ENTRYPOINT must be in exec form")
    elif yaml.safe_load(entry) != ["/usr/local/bin/tickwire-server"]:
        problem(f"{path}: ENTRYPOINT is {entry}")
    env = {}
    for i in runtime:
        if i.upper().startswith("ENV "):
            for m in re.finditer(r"([A-Z_][A-Z0-9_]*)=(\S+)", i):
                env[m.group(1)] = m.group(2)
    for key in env:
        if key not in settings:
            problem(f"{path}: ENV {key} is not a tickwire setting")
    exposed = set()
    for i in runtime:
        if i.upper().startswith("EXPOSE "):
            exposed.update(int(p.split("/")[0]) for p in i.split()[1:])
    for key in ("LISTEN_ADDR", "METRICS_ADDR"):
        addr = env.get(key)
        if addr is None or not addr.startswith("0.0.0.0:"):
            problem(f"{path}: ENV {key} should listen on 0.0.0.0 inside the container")
        elif port_of(addr) not in exposed:
            problem(f"{path}: the port of {key} is not EXPOSEd")
    if "collect-runtime.sh" not in text or "COPY --from=collect" not in text:
        problem(f"{path}: the runtime stage must take /rootfs from collect-runtime.sh")
    known = setup_packages(root)
    for i in instructions:
        if "apt-get install" in i:
            pkgs = [w for w in i.split("apt-get install", 1)[1].split("&&")[0].split()
                    if not w.startswith("-")]
            for p in pkgs:
                if p not in known:
                    problem(f"{path}: apt package {p} is not in scripts/setup.sh")
    ignore = os.path.join(root, ".dockerignore")
    if not os.path.exists(ignore) or "build" not in open(ignore, encoding="utf-8").read().split():
        problem(".dockerignore must keep build/ out of the context")
    for pkg in ("haproxy", "python3-yaml"):
        if pkg not in known:
            problem(f"scripts/setup.sh must install {pkg} (deployment tests)")


# ---------------------------------------------------------------------------------------------
# runbook


def check_runbook(root, settings):
    path = os.path.join(root, "docs", "RUNBOOK.md")
    text = open(path, encoding="utf-8").read()
    # The configuration table: one row per setting, `NAME` in its first column.
    rows = set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", text, re.M))
    for name in settings:
        if name not in rows:
            problem(f"{path}: setting {name} has no row in the configuration table")
    for name in rows:
        if name not in settings and not name.startswith("NATS_"):
            problem(f"{path}: the table lists {name}, which tickwire-server does not have")
    # | `NAME` | `--flag` | default | applies | meaning |: applies is "restart" or "SIGHUP..."
    row = r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*`--[^|]*\|[^|]*\|([^|]*)\|"
    for name, applies in re.findall(row, text, re.M):
        if name not in settings:
            continue
        sighup = applies.strip().startswith("SIGHUP")
        if sighup != (name in RELOADABLE):
            problem(f"{path}: {name} applies on {'SIGHUP' if sighup else 'restart'} in the table, "
                    f"but --help says it {'reloads' if name in RELOADABLE else 'needs a restart'}")
    headings = [h.strip().lower() for h in re.findall(r"^#+ (.*)$", text, re.M)]
    for want in ("build", "configuration", "networking", "observability", "rollout",
                 "health", "scaling", "backpressure", "incident", "security",
                 "multi-instance mode (nats jetstream)"):
        if not any(want in h for h in headings):
            problem(f"{path}: no section about {want}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="tickwire-server binary")
    ap.add_argument("--root", required=True, help="source tree")
    ap.add_argument("checks", nargs="+", choices=["k8s", "docker", "runbook"])
    args = ap.parse_args()
    settings = server_settings(args.server)
    for check in args.checks:
        if check == "k8s":
            check_k8s(args.root, settings)
        elif check == "docker":
            check_docker(args.root, settings)
        else:
            check_runbook(args.root, settings)
    for p in PROBLEMS:
        print("FAIL:", p)
    if PROBLEMS:
        return 1
    print(f"check_deploy.py: {' '.join(args.checks)}: {len(settings)} settings, no problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
