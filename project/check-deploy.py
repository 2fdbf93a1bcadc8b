#!/usr/bin/env python3
"""Checks that the deployment variants describe the same system.

The dockerfiles, project/docker-compose.yml, project/swarm.yml, project/k8s/
and the Caddyfile must agree with each other, with docs/contracts.md (the
variables) and with the README (the ports) on the services' ports,
environment variables, health checks and images. Run by
project/lint-deploy.sh (`make lint-deploy`) with the deployment venv's Python,
which has PyYAML. Prints one line per problem; exits 1 if there is any.
"""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "project"
K8S = PROJECT / "k8s"

# The ports, the same natively and in containers, from their one source:
# proto/src/ports.rs (docs/contracts.md §2 lists them too; checked below).
PORTS = {name: int(value) for name, value in re.findall(
    r"pub const ([A-Z_]+): u16 = (\d+);", (ROOT / "proto" / "src" / "ports.rs").read_text())}
SERVICES = {
    "broker-service": {"http": PORTS["BROKER"]},
    "front-end": {"http": PORTS["FRONT_END"]},
    "authentication-service": {"http": PORTS["AUTHENTICATION"]},
    "logger-service": {"http": PORTS["LOGGER_HTTP"], "rpc": PORTS["LOGGER_RPC"],
                       "grpc": PORTS["LOGGER_GRPC"]},
    "mail-service": {"http": PORTS["MAIL"]},
    "listener-service": {"http": PORTS["LISTENER"]},
}
# The variable that carries each extra port inside the image.
PORT_VARS = {"http": "HTTP_ADDR", "rpc": "RPC_ADDR", "grpc": "GRPC_ADDR"}
INFRA = ["postgres", "mongo", "rabbitmq", "mailpit"]
STATEFUL = ["postgres", "mongo", "rabbitmq"]
# What differs between the deployments on purpose: where the browser reaches
# the broker and the mail UI (a same-origin path behind Caddy, hosts of the
# Ingress in Kubernetes), the page's origin, and the trial user (on in the
# compose trial, off in Swarm and Kubernetes).
BROWSER_VARS = {"BROKER_URL", "MAIL_UI_URL", "CORS_ORIGINS", "SEED_ADMIN"}
# The compose profile observability (make up-observability) and its Swarm
# file, project/swarm-observability.yml: official images, not built from the
# repository, so the rules of the six services (build, image, ports) do not
# apply to them; the general ones (a healthcheck, depends_on healthy) and
# check_observability's do.
OBSERVABILITY = ["prometheus", "jaeger", "grafana"]
OBSERVABILITY_PROFILE = "observability"


# The addresses of the services a client balances over itself
# (docs/deploy.md, "Balancing"): compose's service name resolves to every
# container; Swarm names every task with tasks.<name>, Kubernetes with the
# headless Service <name>-replicas.
BALANCED = ["authentication-service", "logger-service", "mail-service"]


def balanced_as(value, deployment):
    """A compose address as `deployment` writes it."""
    value = str(value)
    for name in BALANCED:
        balanced = {"swarm": f"tasks.{name}", "k8s": f"{name}-replicas"}[deployment]
        value = re.sub(rf"(^|//){re.escape(name)}:", rf"\g<1>{balanced}:", value)
    return value


def unfiled(names):
    """Variable names with a secret's NAME_FILE standing for NAME."""
    return {n.removesuffix("_FILE") for n in names}

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def default_of(value):
    """`${X:-d}` -> d; a literal stays itself; None when it needs the env."""
    value = str(value)
    m = re.fullmatch(r"\$\{[A-Z_]+:-([^}]*)\}", value)
    if m:
        return m.group(1)
    return None if "${" in value else value


def binary_health(test, name):
    """The path a service's own health check asks (`<binary> healthcheck
    [PATH]`, /healthz without one), or None for any other test."""
    test = list(test) if isinstance(test, list) else str(test).split()
    binary = f"/usr/local/bin/{name}"
    if test[:3] == ["CMD", binary, "healthcheck"] and len(test) <= 4:
        return test[3] if len(test) == 4 else "/healthz"
    return None


def health_url(test):
    text = " ".join(test) if isinstance(test, list) else str(test)
    m = re.search(r"http://127\.0\.0\.1(?::(\d+))?(/\S*)", text)
    return (int(m.group(1) or 80), m.group(2)) if m else None


# --- dockerfiles -----------------------------------------------------------

def check_dockerfile(name, ports):
    path = ROOT / name / f"{name}.dockerfile"
    where = str(path.relative_to(ROOT))
    if not path.is_file():
        problem(where, "missing")
        return
    text = path.read_text()
    base = "FROM gcr.io/distroless/cc-debian12:nonroot"
    if base not in text:
        problem(where, f"the runtime stage must be {base} (no shell: docs/deploy.md, Images)")
    runtime = text.split(base, 1)[-1]
    for kind, port in ports.items():
        var = PORT_VARS[kind]
        if not re.search(rf"\b{var}=0\.0\.0\.0:{port}\b", runtime):
            problem(where, f"the image must set {var}=0.0.0.0:{port}")
    expose = re.search(r"^EXPOSE (.+)$", runtime, re.M)
    exposed = set(map(int, expose.group(1).split())) if expose else set()
    if exposed != set(ports.values()):
        problem(where, f"EXPOSE {sorted(exposed)} is not the ports {sorted(ports.values())}")
    if f'CMD ["/usr/local/bin/{name}", "healthcheck"]' not in runtime:
        problem(where, f"HEALTHCHECK must be the binary's own: CMD [\"/usr/local/bin/{name}\", \"healthcheck\"]")
    if f"/src/target/release/{name} " not in runtime:
        problem(where, f"the runtime stage must copy the {name} binary")
    if not re.search(r"^USER 10001", runtime, re.M):
        problem(where, "the runtime stage must run as user 10001")
    if "LOG_FORMAT=json" not in runtime:
        problem(where, "the image must set LOG_FORMAT=json")


# --- compose and swarm -------------------------------------------------------

def service_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def check_compose_like(label, doc, is_swarm):
    services = doc.get("services", {})
    result = {}
    for name in list(SERVICES) + INFRA + ["caddy"]:
        if name not in services:
            problem(label, f"service {name} is missing")
    for name, svc in services.items():
        where = f"{label} {name}"
        if "healthcheck" not in svc:
            problem(where, "has no healthcheck")
        if name in SERVICES:
            ports = SERVICES[name]
            # Compose only reports health (depends_on, --wait): readiness.
            # Swarm replaces an unhealthy task: liveness, or a dependency's
            # outage would have every task that needs it restarted.
            path = "/healthz" if is_swarm else "/readyz"
            test = svc.get("healthcheck", {}).get("test", [])
            asked = binary_health(test, name)
            if asked != path:
                problem(where, f"healthcheck must be [CMD, /usr/local/bin/{name}, healthcheck"
                        + ("" if path == "/healthz" else f", {path}") + f"], not {test}")
            if not str(svc.get("image", "")).endswith(f"/{name}:${{TAG:-latest}}"):
                problem(where, f"image must be ${{IMAGE_PREFIX:-microservices}}/{name}:${{TAG:-latest}}")
            if svc.get("ports"):
                problem(where, "an internal service must not publish ports")
            if svc.get("environment", {}).get("LOG_FORMAT") != "json":
                problem(where, "must set LOG_FORMAT: json")
            if not svc.get("read_only"):
                problem(where, "must run with read_only: true")
            result[name] = service_env(svc)
        if name == "caddy":
            published = [p if isinstance(p, str) else f"{p.get('published')}:{p.get('target')}"
                         for p in svc.get("ports", [])]
            if published != ["80:80"]:
                problem(where, f"must publish port 80, not {published}")
            if health_url(svc.get("healthcheck", {}).get("test", [])) != (80, "/healthz"):
                problem(where, "healthcheck must hit Caddy's /healthz")
        if not is_swarm:
            if name in SERVICES or name == "caddy":
                build = svc.get("build", {})
                want = "project/caddy.dockerfile" if name == "caddy" else f"{name}/{name}.dockerfile"
                if build.get("context") != ".." or build.get("dockerfile") != want:
                    problem(where, f"must build {want} in the workspace root (context ..)")
            for dep, cond in (svc.get("depends_on") or {}).items():
                if not isinstance(cond, dict) or cond.get("condition") != "service_healthy":
                    problem(where, f"depends_on {dep} must wait for service_healthy")
        else:
            deploy = svc.get("deploy", {})
            if name in SERVICES or name == "caddy":
                if deploy.get("replicas", 1) < 2:
                    problem(where, "a stateless service runs 2+ replicas")
                update = deploy.get("update_config", {})
                if update.get("order") != "start-first" or update.get("failure_action") != "rollback":
                    problem(where, "update_config needs order: start-first, failure_action: rollback")
                if "rollback_config" not in deploy:
                    problem(where, "needs a rollback_config")
            if name in STATEFUL and deploy.get("update_config", {}).get("order") != "stop-first":
                problem(where, "a database must update stop-first (never two on one volume)")
            if "restart_policy" not in deploy:
                problem(where, "needs a restart_policy")
            if "limits" not in deploy.get("resources", {}):
                problem(where, "needs resource limits")
            for secret in svc.get("secrets", []):
                source = secret if isinstance(secret, str) else secret["source"]
                if source not in (doc.get("secrets") or {}):
                    problem(where, f"secret {source} is not declared")
            for var, value in service_env(svc).items():
                if var.endswith("_FILE"):
                    mounted = {s if isinstance(s, str) else s.get("target", s["source"])
                               for s in svc.get("secrets", [])}
                    if Path(str(value)).name not in mounted and str(value) not in mounted:
                        problem(where, f"{var}={value} names no mounted secret")
    if is_swarm:
        for net in (doc.get("networks") or {}).values():
            if (net or {}).get("driver") != "overlay":
                problem(label, "every network must be an overlay network")
    return result


# --- kubernetes ---------------------------------------------------------------

def check_k8s(compose_env):
    kustomization = load(K8S / "kustomization.yaml")
    listed = kustomization.get("resources", [])
    present = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    if sorted(listed) != present:
        problem("project/k8s/kustomization.yaml",
                f"resources {sorted(listed)} do not match the directory's manifests {present}")
    images = {i["name"] for i in kustomization.get("images", [])}
    for name in SERVICES:
        if f"microservices/{name}" not in images:
            problem("project/k8s/kustomization.yaml", f"images lacks microservices/{name}")

    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_all(path):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    # The Secret is generated from the files project/deploy-secrets.sh
    # writes (make k8s-secrets): the same secrets as compose's, no value
    # committed; the init scripts' ConfigMap from copies of project/initdb.
    if any(kind == "Secret" for kind, _ in objects):
        problem("project/k8s", "a Secret is committed: generate it (secretGenerator) instead")
    generated = {g["name"]: [Path(f) for f in g.get("files", [])]
                 for key in ("secretGenerator", "configMapGenerator")
                 for g in kustomization.get(key, [])}
    secret_keys = {f.name for f in generated.get("microservices-secrets", [])}
    compose_secrets = set(load(PROJECT / "docker-compose.yml").get("secrets") or {})
    if secret_keys != compose_secrets:
        problem("project/k8s/kustomization.yaml",
                f"the Secret's files {sorted(secret_keys)} are not compose's secrets {sorted(compose_secrets)}")
    init_keys = {f.name for f in generated.get("database-init", [])}
    init_scripts = {f.name for f in (PROJECT / "initdb").iterdir()}
    if init_keys != init_scripts:
        problem("project/k8s/kustomization.yaml",
                f"the ConfigMap database-init holds {sorted(init_keys)}, project/initdb {sorted(init_scripts)}")
    if any(f.parent.name != "generated" for files in generated.values() for f in files):
        problem("project/k8s/kustomization.yaml", "the generators read generated/ only (make k8s-secrets)")
    # Each service a client balances over has a headless twin of its
    # Service: the same pods and ports, a DNS record a pod.
    for name in BALANCED:
        service = objects.get(("Service", name))
        headless = objects.get(("Service", f"{name}-replicas"))
        if service is None or headless is None:
            problem(f"project/k8s/{name}.yaml", f"needs the Services {name} and {name}-replicas")
            continue
        if headless["spec"].get("clusterIP") != "None":
            problem(f"project/k8s/{name}.yaml", f"{name}-replicas must be headless (clusterIP: None)")
        for key in ("selector", "ports"):
            if headless["spec"].get(key) != service["spec"].get(key):
                problem(f"project/k8s/{name}.yaml", f"{name}-replicas must have the {key} of {name}")
    # Every key a pod mounts exists.
    for (kind, name), doc in objects.items():
        if kind not in ("Deployment", "StatefulSet"):
            continue
        for volume in doc["spec"]["template"]["spec"].get("volumes", []):
            source = volume.get("secret") or volume.get("configMap")
            if source is None:
                continue
            known = secret_keys if "secret" in volume else init_keys
            for item in source.get("items", []):
                if item["key"] not in known:
                    problem(f"project/k8s {kind} {name}", f"mounts the missing key {item['key']}")

    for name, ports in SERVICES.items():
        where = f"project/k8s/{name}.yaml"
        deploy = objects.get(("Deployment", name))
        service = objects.get(("Service", name))
        if deploy is None or service is None:
            problem(where, "needs a Deployment and a Service")
            continue
        pod = deploy["spec"]["template"]["spec"]
        container = pod["containers"][0]
        if not container["image"].startswith(f"microservices/{name}:"):
            problem(where, f"image must be microservices/{name}")
        cports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        if cports != ports:
            problem(where, f"container ports {cports} are not {ports}")
        sports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
        if sports != ports:
            problem(where, f"Service ports {sports} are not {ports}")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = container.get(probe, {}).get("httpGet", {})
            if get.get("path") != path or get.get("port") not in ("http", ports["http"]):
                problem(where, f"{probe} must GET {path} on the http port")
        psc = pod.get("securityContext", {})
        csc = container.get("securityContext", {})
        if not (psc.get("runAsNonRoot") and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
                and csc.get("readOnlyRootFilesystem") and csc.get("allowPrivilegeEscalation") is False
                and csc.get("capabilities", {}).get("drop") == ["ALL"]):
            problem(where, "needs the restricted securityContext")
        annotations = deploy["spec"]["template"]["metadata"].get("annotations", {})
        if annotations != {"prometheus.io/scrape": "true", "prometheus.io/port": str(ports["http"]),
                           "prometheus.io/path": "/metrics"}:
            problem(where, f"the pod template needs the prometheus.io/* annotations of /metrics on {ports['http']}")
        res = container.get("resources", {})
        if not (res.get("requests") and res.get("limits")):
            problem(where, "needs resource requests and limits")
        replicas = deploy["spec"].get("replicas")
        hpa = objects.get(("HorizontalPodAutoscaler", name))
        if (hpa["spec"]["minReplicas"] if hpa else replicas or 1) < 2:
            problem(where, "runs 2+ replicas (or an HPA with minReplicas 2+)")

        # The same variables as compose, with the same values where they
        # are not secrets, credentials or browser-facing.
        config = objects.get(("ConfigMap", name), {}).get("data", {})
        refs = [r["configMapRef"]["name"] for r in container.get("envFrom", []) if "configMapRef" in r]
        if refs != [name]:
            problem(where, f"must take envFrom the ConfigMap {name}")
        env = {e["name"]: e for e in container.get("env", [])}
        for var, e in env.items():
            key = e.get("valueFrom", {}).get("secretKeyRef", {}).get("key")
            if key is not None and key not in secret_keys:
                problem(where, f"{var} refers to the missing Secret key {key}")
        k8s_vars = unfiled(set(config) | set(env))
        compose_vars = unfiled(compose_env.get(name, {}))
        if k8s_vars != compose_vars:
            problem(where, f"variables differ from compose: only in k8s {sorted(k8s_vars - compose_vars)}, "
                           f"only in compose {sorted(compose_vars - k8s_vars)}")
        for var, value in config.items():
            if var in BROWSER_VARS or var not in compose_env.get(name, {}):
                continue
            expected = default_of(compose_env[name][var])
            if expected is not None:
                expected = balanced_as(expected, "k8s")
            if expected is not None and str(value) != expected:
                problem(where, f"{var}={value!r} but compose says {expected!r}")

    for name in STATEFUL:
        sts = objects.get(("StatefulSet", name))
        if sts is None or not sts["spec"].get("volumeClaimTemplates"):
            problem(f"project/k8s/{name}.yaml", "needs a StatefulSet with a PersistentVolumeClaim")
    if ("HorizontalPodAutoscaler", "broker-service") not in objects:
        problem("project/k8s", "the broker needs a HorizontalPodAutoscaler")
    ingress = [o for (kind, _), o in objects.items() if kind == "Ingress"]
    backends = {p["backend"]["service"]["name"] for i in ingress for r in i["spec"]["rules"]
                for p in r["http"]["paths"]}
    if not {"front-end", "broker-service"} <= backends:
        problem("project/k8s/ingress.yaml", "must route to front-end and broker-service")


# --- observability ----------------------------------------------------------

def check_observability(compose, native_jobs):
    """The profile observability and project/swarm-observability.yml: the
    same three official images, every job of prometheus.native.yml scraped
    by service name, no service of a plain `up` waiting for one of them."""
    services = compose.get("services", {})
    overlay_path = PROJECT / "swarm-observability.yml"
    overlay = load(overlay_path).get("services", {}) if overlay_path.is_file() else {}
    if not overlay:
        problem("project/swarm-observability.yml", "missing")
    for name in OBSERVABILITY:
        where = f"project/docker-compose.yml {name}"
        svc = services.get(name)
        if svc is None:
            problem(where, "is missing")
            continue
        if svc.get("profiles") != [OBSERVABILITY_PROFILE]:
            problem(where, f"must be in the profile {OBSERVABILITY_PROFILE} only (the Docker tests run without it)")
        for port in svc.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problem(where, f"publishes {port} beyond 127.0.0.1")
        if name in overlay and overlay[name].get("image") != svc.get("image"):
            problem(f"project/swarm-observability.yml {name}",
                    f"runs {overlay[name].get('image')}, compose runs {svc.get('image')}")
    for name, svc in services.items():
        if OBSERVABILITY_PROFILE in (svc.get("profiles") or []):
            continue
        for dep in svc.get("depends_on") or {}:
            if dep in OBSERVABILITY:
                problem(f"project/docker-compose.yml {name}", f"depends on {dep}, which a plain up does not start")
    for name, svc in overlay.items():
        where = f"project/swarm-observability.yml {name}"
        if name in SERVICES:
            if set(service_env(svc)) != {"OTEL_EXPORTER_OTLP_ENDPOINT"}:
                problem(where, "may set OTEL_EXPORTER_OTLP_ENDPOINT only")
            continue
        if name not in OBSERVABILITY:
            problem(where, "is neither one of the six services nor an observability service")
            continue
        deploy = svc.get("deploy", {})
        if "healthcheck" not in svc:
            problem(where, "has no healthcheck")
        if "restart_policy" not in deploy:
            problem(where, "needs a restart_policy")
        if "limits" not in deploy.get("resources", {}):
            problem(where, "needs resource limits")
        if svc.get("ports"):
            problem(where, "must not publish ports (the routing mesh opens them on every node)")

    # Compose and Swarm scrape the same jobs as the native stack, under the
    # services' names (the dashboard groups by job).
    def targets(path):
        jobs = {}
        for job in load(path).get("scrape_configs", []):
            found = [t for c in job.get("static_configs", []) for t in c.get("targets", [])]
            found += [f"{n}:{c.get('port')}" for c in job.get("dns_sd_configs", []) for n in c.get("names", [])]
            jobs[job["job_name"]] = found
        return jobs
    for path, host in ((PROJECT / "observability" / "prometheus.yml", "{name}"),
                       (PROJECT / "observability" / "prometheus.swarm.yml", "tasks.{name}")):
        where = str(path.relative_to(ROOT))
        if not path.is_file():
            problem(where, "missing")
            continue
        jobs = targets(path)
        if set(jobs) != set(native_jobs):
            problem(where, f"jobs {sorted(jobs)} are not prometheus.native.yml's {sorted(native_jobs)}")
        for name, ports in SERVICES.items():
            want = [f"{host.format(name=name)}:{ports['http']}"]
            if jobs.get(name, want) != want:
                problem(where, f"job {name} must scrape {want}, not {jobs[name]}")


# --- origins -----------------------------------------------------------------

def origins_of(value):
    """A comma-separated CORS_ORIGINS value, as a set; empty for none."""
    return {o.strip() for o in str(value).split(",") if o.strip()}


def check_origins(compose_env, swarm_env):
    """docs/security.md's table of the browser origins each service allows
    in each deployment agrees with what runs: the code's default
    (PAGE_ORIGINS in service-kit's origins.rs) natively, the services that
    opt in (`Service::origins`), and the values in compose, Swarm,
    .env.example and the Kubernetes ConfigMaps."""
    where = "docs/security.md"
    source = (ROOT / "support" / "service-kit" / "src" / "origins.rs").read_text()
    m = re.search(r'pub const PAGE_ORIGINS: &str =\s*"((?:[^"\\]|\\\n)*)";', source)
    if not m:
        problem("support/service-kit/src/origins.rs", "PAGE_ORIGINS not found")
        return
    page_origins = origins_of(re.sub(r"\\\n\s*", "", m.group(1)))
    section = (ROOT / "docs" / "security.md").read_text().split("### No cross-site use", 1)[-1]
    section = section.split("\n### ", 1)[0]
    table = {}
    for row in re.findall(r"^\| ([a-z-]+) \|(.*)\|\s*$", section, re.M):
        cells = [c.strip() for c in row[1].split("|")]
        table[row[0]] = [set() if c == "none" else set(re.findall(r"`([^`]+)`", c)) for c in cells]
    configmaps = {d["metadata"]["name"]: d.get("data") or {}
                  for d in load_all(K8S / "configmaps.yaml") if d["kind"] == "ConfigMap"}
    example = dict(line.split("=", 1) for line in (PROJECT / ".env.example").read_text().splitlines()
                   if re.match(r"[A-Z_]+=", line))
    native_scripts = " ".join(p.read_text() for p in (PROJECT / "native").glob("*.sh"))
    if "CORS_ORIGINS" in native_scripts:
        problem("project/native", "sets CORS_ORIGINS: natively the services run with the code's default")
    for name in SERVICES:
        cells = table.get(name)
        if cells is None or len(cells) != 3:
            problem(where, f"the origins table needs a row for {name}: natively, compose and Swarm, Kubernetes")
            continue
        opts_in = any(re.search(r"\.origins\(", p.read_text()) for p in (ROOT / name / "src").glob("*.rs"))
        running = {
            "natively": page_origins if opts_in else set(),
            "in compose": origins_of(default_of(compose_env.get(name, {}).get("CORS_ORIGINS", "")) or ""),
            "in Swarm": origins_of(default_of(swarm_env.get(name, {}).get("CORS_ORIGINS", "")) or ""),
            "in .env.example": origins_of(example.get("CORS_ORIGINS", "")) if opts_in else set(),
            "in Kubernetes": origins_of(configmaps.get(name, {}).get("CORS_ORIGINS", "")),
        }
        documented = {"natively": cells[0], "in compose": cells[1], "in Swarm": cells[1],
                      "in .env.example": cells[1], "in Kubernetes": cells[2]}
        for deployment, origins in running.items():
            if origins != documented[deployment]:
                problem(where, f"{name} allows {sorted(origins) or 'no origin'} {deployment}, "
                               f"the table says {sorted(documented[deployment]) or 'none'}")
        if not opts_in and any(running.values()):
            problem(name, "sets CORS_ORIGINS but its server allows no origin (no Service::origins)")


def main():
    for name, ports in SERVICES.items():
        check_dockerfile(name, ports)

    compose = load(PROJECT / "docker-compose.yml")
    swarm = load(PROJECT / "swarm.yml")
    compose_env = check_compose_like("project/docker-compose.yml", compose, is_swarm=False)
    swarm_env = check_compose_like("project/swarm.yml", swarm, is_swarm=True)

    # Swarm: the same variables, a secret's NAME_FILE standing for NAME.
    for name in SERVICES:
        c = {k.removesuffix("_FILE"): v for k, v in compose_env.get(name, {}).items()}
        s = {k.removesuffix("_FILE"): v for k, v in swarm_env.get(name, {}).items()}
        if set(c) != set(s):
            problem(f"project/swarm.yml {name}",
                    f"variables differ from compose: {sorted(set(c) ^ set(s))}")
        for var in set(c) & set(s):
            filed = f"{var}_FILE" in swarm_env.get(name, {}) or f"{var}_FILE" in compose_env.get(name, {})
            if not filed and var not in BROWSER_VARS and balanced_as(c[var], "swarm") != str(s[var]):
                problem(f"project/swarm.yml {name}", f"{var}={s[var]!r} but compose says {c[var]!r}, "
                                                     f"which Swarm writes {balanced_as(c[var], 'swarm')!r}")
    if set(swarm.get("secrets") or {}) != set(compose.get("secrets") or {}):
        problem("project/swarm.yml", f"its secrets {sorted(swarm.get('secrets') or {})} "
                                     f"are not compose's {sorted(compose.get('secrets') or {})}")
    for name in INFRA:
        ci = compose["services"].get(name, {}).get("image")
        si = swarm["services"].get(name, {}).get("image")
        if ci != si:
            problem("project/swarm.yml", f"{name} runs {si}, compose runs {ci}")

    check_k8s(compose_env)
    check_origins(compose_env, swarm_env)
    native_jobs = {job["job_name"] for job in
                   load(PROJECT / "observability" / "prometheus.native.yml").get("scrape_configs", [])}
    if native_jobs != set(SERVICES):
        problem("project/observability/prometheus.native.yml", f"jobs {sorted(native_jobs)} are not the six services")
    check_observability(compose, native_jobs)
    for name in INFRA:
        images = {c["image"] for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml"
                  for d in load_all(path) if d["kind"] in ("StatefulSet", "Deployment")
                  and d["metadata"]["name"] == name for c in d["spec"]["template"]["spec"]["containers"]}
        if images != {compose["services"].get(name, {}).get("image")}:
            problem(f"project/k8s/{name}.yaml", f"runs {images}, compose runs {compose['services'][name]['image']}")

    # Every service variable is documented in the contracts' configuration
    # table, and each service's port is in the README.
    contracts = (ROOT / "docs" / "contracts.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", contracts))
    for name, env in compose_env.items():
        for var in env:
            if var not in documented:
                problem("docs/contracts.md", f"{var} (used by {name}) is not in the configuration table")
    # The contracts' port table and the native scripts agree with ports.rs.
    for name, ports in SERVICES.items():
        row = re.search(rf"^\| {re.escape(name)} \| (\d+)", contracts, re.M)
        if not row or int(row.group(1)) != ports["http"]:
            problem("docs/contracts.md", f"§2 must give {name} HTTP port {ports['http']}")
        native = (PROJECT / "native" / "common.sh").read_text()
        if not re.search(rf"{re.escape(name)}\) echo {ports['http']} ;;", native):
            problem("project/native/common.sh", f"port_of must answer {ports['http']} for {name}")
    for extra in ("rpc", "grpc"):
        port = SERVICES["logger-service"][extra]
        if not re.search(rf"^\| logger-service \|.*\b{port}\b", contracts, re.M):
            problem("docs/contracts.md", f"§2 must give the logger's {extra} port {port}")
    readme = (ROOT / "README.md").read_text()
    for name, ports in SERVICES.items():
        if not re.search(rf"localhost:{ports['http']}\b", readme):
            problem("README.md", f"does not mention {name}'s port {ports['http']}")

    # Caddy proxies to the compose / Swarm names and ports.
    caddyfile = (PROJECT / "Caddyfile").read_text()
    for name in ("broker-service", "front-end"):
        if f"reverse_proxy {name}:{SERVICES[name]['http']}" not in caddyfile:
            problem("project/Caddyfile", f"must proxy to {name}:{SERVICES[name]['http']}")

    # Every variable compose interpolates is in .env.example.
    example = {line.split("=", 1)[0] for line in (PROJECT / ".env.example").read_text().splitlines()
               if re.match(r"[A-Z_]+=", line)}
    used = set(re.findall(r"\$\{([A-Z_]+)", (PROJECT / "docker-compose.yml").read_text()))
    # IMAGE_PREFIX and TAG come from make; so does OTEL_EXPORTER_OTLP_ENDPOINT
    # (make up-observability), empty, that is no traces, without it.
    for var in sorted(used - example - {"IMAGE_PREFIX", "TAG", "OTEL_EXPORTER_OTLP_ENDPOINT"}):
        problem("project/.env.example", f"lacks {var}, which docker-compose.yml uses")

    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
