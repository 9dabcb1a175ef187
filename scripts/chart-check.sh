#!/usr/bin/env bash
# scripts/chart-check.sh — lint and render charts/moat; prove bad values are rejected.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/chart-check.sh [--chart DIR] [--kube-version X.Y.Z] [-h|--help]

Checks the Helm chart (default charts/moat) without a cluster:
  1. helm lint --strict, with the defaults and with every ci/*-values.yaml
  2. helm template with every ci/*-values.yaml; rendered images are pinned
     (a tag other than `latest`, or a digest)
  3. conventions: every value documented with `# --`, every schema object
     closed (additionalProperties: false), every helper (templates/**/*.tpl)
     with a Usage comment,
     every `fail` in templates/validate.yaml
  4. the interception CA's isolation: with an imported CA (a Secret) or a
     generated one (its data claim), only the tls-mediation Deployment mounts
     it; the proxy and the test pods do not
     and the gRPC mutual TLS material's: server.key only in the tls-mediation
     Deployment, client.key only in the proxy and tls-mediation's test pod,
     always through items; the generated certificates name the Service and
     chain to their CA; grpcTls off leaves no Secret, mount or *_FILE variable
  5. av-scanner: rendered with the defaults, with KEDA (keda.enabled and a fake
     keda.sh/v1alpha1 via --api-versions), with signatures.source=test and
     disabled: the worker, clamd and freshclam containers (or the test
     database's init container and no freshclam); clamd's socket volume
     mounted by the worker (read-only) and clamd only, by nothing else in the
     release; the CPU HPA or KEDA's ScaledObject (nats-jetstream on
     MOAT_SCAN/av-scanner), never both; the rendered clamd.conf and
     freshclam.conf parse with clamconf (when installed)
  6. negative cases: typo'd keys, bad enums and `latest` tags are rejected by
     values.schema.json; contradictory values trip templates/validate.yaml

Prints one line per check and exits non-zero if any failed.
Needs helm (v3) and node.
EOF
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/charts/moat"
KUBE_VERSION=1.31.0 # the k3s minor Moat targets; the chart needs >= 1.27

while (($#)); do
  case "$1" in
    --chart) CHART="$(cd "$2" && pwd)"; shift 2 ;;
    --kube-version) KUBE_VERSION="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; echo "[chart] error: unknown argument: $1" >&2; exit 2 ;;
  esac
done

[[ -x /opt/moat/node/bin/node ]] && PATH="/opt/moat/node/bin:$PATH"
command -v helm >/dev/null || { echo "[chart] error: helm not found (GOBIN=/usr/local/bin go install helm.sh/helm/v3/cmd/helm@v3.19.0)" >&2; exit 1; }
command -v node >/dev/null || { echo "[chart] error: node not found" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PASSED=0
FAILED=0

pass() { PASSED=$((PASSED + 1)); printf '[chart] ok    %s\n' "$1"; }
fail() {
  FAILED=$((FAILED + 1))
  printf '[chart] FAIL  %s\n' "$1"
  [[ -s "${2:-/dev/null}" ]] && sed 's/^/        /' "$2" | head -30
  return 0
}

# check TITLE CMD... — run CMD; pass if it exits 0, else fail with its output.
check() {
  local title="$1"
  shift
  if "$@" >"$WORK/out" 2>&1; then pass "$title"; else fail "$title" "$WORK/out"; fi
}

# expect_rejected TITLE PATTERN HELM-ARGS... — helm template must fail, printing PATTERN.
expect_rejected() {
  local title="$1" pattern="$2"
  shift 2
  if helm template moat "$CHART" --kube-version "$KUBE_VERSION" "$@" >"$WORK/out" 2>&1; then
    fail "$title (was accepted)"
  elif grep -qE -- "$pattern" "$WORK/out"; then
    pass "$title"
  else
    fail "$title (rejected, but without /$pattern/)" "$WORK/out"
  fi
}

helm_version=$(helm version --template '{{ .Version }}' 2>/dev/null || echo unknown)
echo "[chart] $CHART with helm $helm_version, Kubernetes $KUBE_VERSION"

# --- 1. lint --------------------------------------------------------------------------

check "helm lint --strict (defaults)" helm lint --strict --kube-version "$KUBE_VERSION" "$CHART"
shopt -s nullglob
ci_files=("$CHART"/ci/*-values.yaml)
((${#ci_files[@]})) || fail "ci/*-values.yaml: none found"
for f in "${ci_files[@]}"; do
  check "helm lint --strict -f ci/$(basename "$f")" helm lint --strict --kube-version "$KUBE_VERSION" -f "$f" "$CHART"
done

# --- 2. render ------------------------------------------------------------------------

# pinned_images FILE — every rendered image has a tag other than latest, or a digest.
pinned_images() {
  local bad
  bad=$(grep -E '^\s*image:' "$1" | sed -E 's/^\s*image:\s*"?([^"]*)"?\s*$/\1/' |
    awk '{ ref = $0; sub(/@sha256:[a-f0-9]{64}$/, "", ref); last = ref; sub(/.*\//, "", last)
           if (ref == $0 && (last !~ /:/ || last ~ /:latest$/)) print $0 }')
  [[ -z "$bad" ]] || { echo "unpinned images: $bad"; return 1; }
}

for f in "${ci_files[@]}"; do
  name=$(basename "$f" -values.yaml)
  if helm template moat "$CHART" --namespace moat --kube-version "$KUBE_VERSION" -f "$f" >"$WORK/$name.yaml" 2>"$WORK/out"; then
    if pinned_images "$WORK/$name.yaml" >"$WORK/out" 2>&1; then
      pass "helm template -f ci/$(basename "$f"): $(grep -c '^kind:' "$WORK/$name.yaml") objects, images pinned"
    else
      fail "helm template -f ci/$(basename "$f"): images" "$WORK/out"
    fi
  else
    fail "helm template -f ci/$(basename "$f")" "$WORK/out"
  fi
done

# --- 3. conventions ---------------------------------------------------------------------

# Every key in values.yaml carries a `# --` comment, except inside a map that is
# documented as a whole (none of its keys has one, e.g. resources).
values_documented() {
  node - "$CHART/values.yaml" <<'EOF'
const lines = require("node:fs").readFileSync(process.argv[2], "utf8").split("\n");
const root = { indent: -1, children: [], path: "" };
const stack = [root];
let doc = false;
let seqIndent = -1; // inside a block sequence: skip its lines
lines.forEach((line, n) => {
  if (/^\s*$/.test(line)) { doc = false; return; }
  const indent = line.search(/\S/);
  if (seqIndent >= 0 && indent > seqIndent) return;
  seqIndent = -1;
  if (/^\s*#/.test(line)) { if (/^\s*# --/.test(line)) doc = true; return; }
  if (/^\s*- /.test(line)) { seqIndent = indent - 1; return; }
  const m = line.match(/^(\s*)([A-Za-z0-9_.\/-]+):(\s|$)/);
  if (!m) return;
  while (stack.at(-1).indent >= indent) stack.pop();
  const parent = stack.at(-1);
  const node = { indent, children: [], documented: doc, line: n + 1, path: `${parent.path}${parent.path ? "." : ""}${m[2]}` };
  parent.children.push(node);
  stack.push(node);
  doc = false;
});
const anyDoc = (n) => n.children.some((c) => c.documented || anyDoc(c));
const missing = [];
const check = (n) => {
  if (!n.documented) missing.push(`${n.path} (line ${n.line})`);
  if (anyDoc(n)) n.children.forEach(check);
};
root.children.forEach(check);
if (missing.length) { console.log(`undocumented values:\n${missing.join("\n")}`); process.exit(1); }
EOF
}

# Every object in values.schema.json that lists properties is closed.
schema_closed() {
  node - "$CHART/values.schema.json" <<'EOF'
const schema = JSON.parse(require("node:fs").readFileSync(process.argv[2], "utf8"));
const open = [];
const walk = (node, path) => {
  if (Array.isArray(node)) return node.forEach((v, i) => walk(v, `${path}/${i}`));
  if (!node || typeof node !== "object") return;
  if (node.properties && node.additionalProperties !== false) open.push(path || "/");
  for (const [k, v] of Object.entries(node)) walk(v, `${path}/${k}`);
};
walk(schema, "");
if (open.length) { console.log(`objects without additionalProperties: false:\n${open.join("\n")}`); process.exit(1); }
EOF
}

# Every `define` in _helpers.tpl (and a component's own templates/<c>/_*.tpl) has a
# comment showing how to call it.
helpers_documented() {
  node - "$CHART/templates" <<'EOF'
const fs = require("node:fs");
const path = require("node:path");
const files = fs.readdirSync(process.argv[2], { recursive: true }).filter((f) => f.endsWith(".tpl"));
const text = files.map((f) => fs.readFileSync(path.join(process.argv[2], f), "utf8")).join("\n");
const commentRe = /\{\{-?\s*\/\*([\s\S]*?)\*\/\s*-?\}\}/g;
const comments = [...text.matchAll(commentRe)].map((m) => m[1]).join("\n");
const names = [...text.replace(commentRe, "").matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((m) => m[1]);
const usages = new Set([...comments.matchAll(/include "([^"]+)"/g)].map((m) => m[1]));
const bad = names.filter((n) => !usages.has(n));
if (!names.length || !/Usage:/.test(comments)) { console.log("no helpers or no Usage comments found"); process.exit(1); }
if (bad.length) { console.log(`helpers without a Usage comment: ${bad.join(", ")}`); process.exit(1); }
EOF
}

# `fail` appears only in templates/validate.yaml.
fails_in_validate() {
  local stray
  stray=$(grep -rlE '\bfail[[:space:]]+"|\(fail[[:space:]]' "$CHART/templates" | grep -v '/validate.yaml$' || true)
  [[ -z "$stray" ]] || { echo "fail outside validate.yaml: $stray"; return 1; }
}

check "values.yaml: every value documented with # --" values_documented
check "values.schema.json: every object closed (additionalProperties: false)" schema_closed
check "*.tpl: every helper has a Usage comment" helpers_documented
check "templates: every fail lives in validate.yaml" fails_in_validate

# --- 4. the interception CA ------------------------------------------------------------

# ca_isolated SECRET CLAIM FILE... — the interception CA's key stays in tls-mediation: in every
# rendered FILE the Secret SECRET (tlsMediation.ca.existingSecret) or the data claim CLAIM (a
# generated CA) is mounted once, by the tls-mediation Deployment, and named nowhere else but in
# the claim's own PersistentVolumeClaim. No other pod (the proxy, the tests) mounts either.
ca_isolated() {
  node - "$@" <<'EOF'
const fs = require("node:fs");
const [secret, claim, ...files] = process.argv.slice(2);
const problems = [];
for (const file of files) {
  let mounts = 0;
  for (const doc of fs.readFileSync(file, "utf8").split(/^---\s*$/m)) {
    const kind = doc.match(/^kind:\s*(\S+)/m)?.[1] ?? "?";
    const name = doc.match(/^metadata:\n(?:[ #].*\n)*?  name:\s*"?([^"\s]+)/m)?.[1] ?? "?";
    const custodian = kind === "Deployment" && name.endsWith("-tls-mediation");
    for (const line of doc.split("\n")) {
      const mount = line.match(/^\s*(secretName|claimName):\s*"?([^"\s]+)"?\s*$/);
      if (mount && custodian && mount[2] === (mount[1] === "secretName" ? secret : claim)) mounts++;
      else if (kind === "PersistentVolumeClaim" && name === claim && /^\s*name:/.test(line)) continue;
      else if (line.includes(secret) || line.includes(claim))
        problems.push(`${file.replace(/.*\//, "")}: ${kind}/${name} names the CA: ${line.trim()}`);
    }
  }
  if (mounts !== 1) problems.push(`${file.replace(/.*\//, "")}: the tls-mediation Deployment mounts the CA ${mounts} times, not once`);
}
if (problems.length) { console.log(problems.join("\n")); process.exit(1); }
EOF
}

# ca_isolation — render with an imported CA (a Secret) and with a generated one (the claim), each
# with the explicit proxy (a Deployment) and the transparent one (a DaemonSet), tests on.
ca_isolation() {
  local secret=moat-ca-isolation-probe claim=moat-tls-mediation-data f ca n=0
  local -a out=()
  for f in "" "$CHART/ci/gateway-agents-values.yaml"; do
    for ca in "tlsMediation.ca.existingSecret=$secret" "tlsMediation.ca.existingSecret="; do
      n=$((n + 1))
      helm template moat "$CHART" --namespace moat --kube-version "$KUBE_VERSION" ${f:+-f "$f"} \
        --set tests.enabled=true --set "$ca" >"$WORK/ca-isolation-$n.yaml" || return 1
      out+=("$WORK/ca-isolation-$n.yaml")
    done
  done
  ca_isolated "$secret" "$claim" "${out[@]}"
}

check "tls-mediation: only its Deployment mounts the CA (Secret or data claim), not the proxy or tests" ca_isolation

# grpc_tls_isolated MODE SECRET FILE... — the gRPC port's mutual TLS material (tlsMediation.grpcTls)
# in every rendered FILE. MODE generated|existing: every pod mounts the Secret SECRET through
# items, never whole; server.key only in the tls-mediation Deployment, client.key only in the
# proxy (Deployment or DaemonSet) and the tls-mediation test pod, each of which mounts it; both
# ConfigMaps name the files; with generated, the chart's Secret holds exactly ca.crt, server.crt,
# server.key, client.crt, client.key, the server certificate names the Service
# (<name>, .<ns>, .<ns>.svc, .<ns>.svc.cluster.local), the client's CN is moat-proxy and both
# chain to ca.crt; with existing, the chart renders no such Secret. MODE off: no Secret, no
# mount, no *_FILE variable.
grpc_tls_isolated() {
  node - "$@" <<'EOF'
const fs = require("node:fs");
const { X509Certificate } = require("node:crypto");
const [mode, secret, ...files] = process.argv.slice(2);
const problems = [];
for (const file of files) {
  const f = file.replace(/.*\//, "");
  const holders = { "server.key": [], "client.key": [] };
  let secretDoc = null;
  let configs = "";
  for (const doc of fs.readFileSync(file, "utf8").split(/^---\s*$/m)) {
    const kind = doc.match(/^kind:\s*(\S+)/m)?.[1] ?? "?";
    const name = doc.match(/^metadata:\n(?:[ #].*\n)*?  name:\s*"?([^"\s]+)/m)?.[1] ?? "?";
    const id = `${kind}/${name}`;
    if (kind === "Secret" && name === secret) secretDoc = doc;
    if (kind === "ConfigMap") configs += doc;
    const lines = doc.split("\n");
    lines.forEach((line, i) => {
      const m = line.match(/^(\s*)secretName:\s*"?([^"\s]+)"?\s*$/);
      if (!m) return;
      // The rest of this `secret:` volume source: the following lines indented at least as deep.
      const block = [];
      for (let j = i + 1; j < lines.length && lines[j].search(/\S|$/) >= m[1].length; j++) block.push(lines[j]);
      const items = block.some((l) => /^\s*items:/.test(l));
      const keys = block.map((l) => l.match(/^\s*-?\s*key:\s*"?([^"\s]+)"?\s*$/)?.[1]).filter(Boolean);
      if (m[2] === secret && mode === "off") problems.push(`${f}: ${id} mounts ${secret} with grpcTls off`);
      if (m[2] === secret && !items) problems.push(`${f}: ${id} mounts all of ${secret} (no items)`);
      for (const key of ["server.key", "client.key"]) if (keys.includes(key) || (m[2] === secret && !items)) holders[key].push(id);
    });
  }
  const server = (id) => /^Deployment\/.*-tls-mediation$/.test(id);
  const client = (id) => /^(Deployment|DaemonSet)\/.*-proxy$/.test(id) || /^Pod\/.*-tls-mediation-test$/.test(id);
  for (const id of holders["server.key"]) if (!server(id)) problems.push(`${f}: ${id} mounts server.key`);
  for (const id of holders["client.key"]) if (!client(id)) problems.push(`${f}: ${id} mounts client.key`);
  const vars = ["MOAT_TLS_MEDIATION_GRPC_TLS_CERT_FILE", "MOAT_TLS_MEDIATION_GRPC_TLS_KEY_FILE", "MOAT_TLS_MEDIATION_GRPC_CLIENT_CA_FILE",
    "MOAT_PROXY_TLS_MEDIATION_CA_FILE", "MOAT_PROXY_TLS_MEDIATION_CERT_FILE", "MOAT_PROXY_TLS_MEDIATION_KEY_FILE"];
  if (mode === "off") {
    if (secretDoc) problems.push(`${f}: Secret/${secret} rendered with grpcTls off`);
    for (const v of vars) if (configs.includes(v)) problems.push(`${f}: ${v} set with grpcTls off`);
    continue;
  }
  for (const v of vars) if (!configs.includes(`${v}:`)) problems.push(`${f}: no ${v} in any ConfigMap`);
  if (!holders["server.key"].length) problems.push(`${f}: the tls-mediation Deployment does not mount server.key`);
  if (!holders["client.key"].some((id) => /-proxy$/.test(id))) problems.push(`${f}: the proxy does not mount client.key`);
  if (!holders["client.key"].some((id) => /^Pod\//.test(id))) problems.push(`${f}: the tls-mediation test pod does not mount client.key`);
  if (mode === "existing") {
    if (secretDoc) problems.push(`${f}: the chart renders Secret/${secret}, which grpcTls.existingSecret names`);
    continue;
  }
  if (!secretDoc) { problems.push(`${f}: no Secret/${secret}`); continue; }
  const data = Object.fromEntries([...(secretDoc.split(/^data:\s*$/m)[1] ?? "").matchAll(/^  ([-._a-zA-Z0-9]+):\s*(\S+)\s*$/gm)].map((m) => [m[1], Buffer.from(m[2], "base64")]));
  const want = ["ca.crt", "client.crt", "client.key", "server.crt", "server.key"];
  if (Object.keys(data).sort().join() !== want.join()) { problems.push(`${f}: Secret/${secret} holds ${Object.keys(data).sort().join(", ")}, not ${want.join(", ")}`); continue; }
  const ca = new X509Certificate(data["ca.crt"]);
  const srv = new X509Certificate(data["server.crt"]);
  const cli = new X509Certificate(data["client.crt"]);
  const svc = `${secret.replace(/-grpc$/, "")}`;
  const ns = file.match(/ns=([^.]+)/)?.[1] ?? "moat";
  if (!ca.ca) problems.push(`${f}: ca.crt is not a CA`);
  for (const [what, c] of [["server.crt", srv], ["client.crt", cli]])
    if (!c.checkIssued(ca) || !c.verify(ca.publicKey)) problems.push(`${f}: ${what} is not signed by ca.crt`);
  const sans = (srv.subjectAltName ?? "").split(/,\s*/);
  for (const n of [svc, `${svc}.${ns}`, `${svc}.${ns}.svc`, `${svc}.${ns}.svc.cluster.local`])
    if (!sans.includes(`DNS:${n}`)) problems.push(`${f}: server.crt does not name ${n} (${sans.join(", ")})`);
  if (!/^CN=moat-proxy$/m.test(cli.subject)) problems.push(`${f}: client.crt subject is ${cli.subject}, not CN=moat-proxy`);
  if (!srv.checkPrivateKey(require("node:crypto").createPrivateKey(data["server.key"]))) problems.push(`${f}: server.key does not match server.crt`);
  if (!cli.checkPrivateKey(require("node:crypto").createPrivateKey(data["client.key"]))) problems.push(`${f}: client.key does not match client.crt`);
}
if (problems.length) { console.log(problems.join("\n")); process.exit(1); }
EOF
}

# grpc_tls_isolation — render with the chart's generated Secret, an existing Secret and grpcTls
# off, each with the explicit proxy (a Deployment) and the transparent one (a DaemonSet), tests on.
grpc_tls_isolation() {
  local generated=moat-tls-mediation-grpc existing=moat-grpc-tls-probe f n=0
  local -a gen=() ext=() off=()
  for f in "" "$CHART/ci/gateway-agents-values.yaml"; do
    n=$((n + 1))
    helm template moat "$CHART" --namespace moat --kube-version "$KUBE_VERSION" ${f:+-f "$f"} \
      --set tests.enabled=true >"$WORK/grpc-tls-generated-$n.ns=moat.yaml" || return 1
    gen+=("$WORK/grpc-tls-generated-$n.ns=moat.yaml")
    helm template moat "$CHART" --namespace moat --kube-version "$KUBE_VERSION" ${f:+-f "$f"} \
      --set tests.enabled=true --set "tlsMediation.grpcTls.existingSecret=$existing" >"$WORK/grpc-tls-existing-$n.yaml" || return 1
    ext+=("$WORK/grpc-tls-existing-$n.yaml")
    helm template moat "$CHART" --namespace moat --kube-version "$KUBE_VERSION" ${f:+-f "$f"} \
      --set tests.enabled=true --set tlsMediation.grpcTls.enabled=false >"$WORK/grpc-tls-off-$n.yaml" || return 1
    off+=("$WORK/grpc-tls-off-$n.yaml")
  done
  # Another namespace: the server certificate follows it.
  helm template moat "$CHART" --namespace edge-gw --kube-version "$KUBE_VERSION" \
    --set tests.enabled=true >"$WORK/grpc-tls-generated-ns=edge-gw.yaml" || return 1
  gen+=("$WORK/grpc-tls-generated-ns=edge-gw.yaml")
  grpc_tls_isolated generated "$generated" "${gen[@]}" &&
    grpc_tls_isolated existing "$existing" "${ext[@]}" &&
    grpc_tls_isolated off "$generated" "${off[@]}"
}

check "tls-mediation gRPC mTLS: server.key only in its Deployment, client.key only in the proxy and the test; certificates valid" grpc_tls_isolation

# --- 5. av-scanner: its pod, its scaling, its clamd -------------------------------------------

# av_scanner_checks MODES FILE... — the av-scanner resources in every rendered FILE (release `moat`,
# namespace `moat`); MODES is a comma list of default, keda, test, off. Always: clamd's socket volume (clamd-socket, /run/clamav) is mounted by the
# worker (read-only) and clamd (read-write) and by nothing else in the release — not freshclam, not
# the init container, not any other pod; the signature volume is read-only in the worker and clamd;
# the worker's ConfigMap points at the socket and the database; clamd runs with the ConfigMap's
# clamd.conf (renderClamdConfig's settings) and its probes are clamdscan --ping through that
# config; no API token. default: the freshclam init container and sidecar (freshclam.conf
# without NotifyClamd), the CPU HPA and no ScaledObject, mirror egress. keda: a ScaledObject
# (nats-jetstream on MOAT_SCAN/av-scanner, account $G, the bundled NATS's monitoring endpoint, and
# cpu) and no av-scanner HPA; NATS admits the KEDA operator to its monitoring port. test: the
# test-signatures init container, no freshclam anywhere, the signature age limit at 8760 h, no
# mirror egress. off: no av-scanner resource at all, and control does not expect its status.
av_scanner_checks() {
  node - "$@" <<'EOF'
const fs = require("node:fs");
const [mode, ...files] = process.argv.slice(2);
const modes = new Set(mode.split(","));

// A YAML reader for what `helm template` prints: block mappings and sequences, quoted and plain
// scalars, flow sequences of scalars, block scalars (| and |-); comments on their own lines.
function parseYaml(text) {
  const lines = text.split("\n");
  let i = 0;
  const indentOf = (l) => l.search(/\S/);
  const skip = () => { while (i < lines.length && (/^\s*$/.test(lines[i]) || /^\s*#/.test(lines[i]))) i++; };
  const scalar = (s) => {
    s = s.trim();
    if (s === "" || s === "~" || s === "null") return null;
    if (s.startsWith('"')) return JSON.parse(s);
    if (s.startsWith("'")) return s.slice(1, -1).replace(/''/g, "'");
    if (s.startsWith("[")) {
      try { return JSON.parse(s); } catch { return s.slice(1, -1).split(",").map((x) => scalar(x)).filter((x) => x !== null); }
    }
    if (s === "{}") return {};
    if (s === "true" || s === "false") return s === "true";
    if (/^-?[0-9]+(\.[0-9]+)?$/.test(s)) return Number(s);
    return s;
  };
  const block = (indent, keep) => {
    const out = [];
    let base = -1;
    while (i < lines.length && (/^\s*$/.test(lines[i]) || indentOf(lines[i]) > indent)) {
      if (base < 0 && !/^\s*$/.test(lines[i])) base = indentOf(lines[i]);
      out.push(lines[i].slice(Math.max(base, 0)));
      i++;
    }
    while (out.length && out.at(-1).trim() === "") out.pop();
    return out.join("\n") + (keep ? "\n" : "");
  };
  function node(indent) {
    skip();
    if (i >= lines.length) return null;
    const ind = indentOf(lines[i]);
    if (ind < indent) return null;
    return /^\s*- |^\s*-$/.test(lines[i]) ? seq(ind) : map(ind);
  }
  function value(rest, ind) {
    if (rest === "|" || rest === "|-") return block(ind, rest === "|");
    if (rest !== "") return scalar(rest);
    skip();
    if (i >= lines.length) return null;
    const next = indentOf(lines[i]);
    if (next > ind) return node(next);
    if (next === ind && /^\s*-( |$)/.test(lines[i])) return seq(ind);
    return null;
  }
  function map(ind) {
    const m = {};
    for (skip(); i < lines.length && indentOf(lines[i]) === ind && !/^\s*-( |$)/.test(lines[i]); skip()) {
      const kv = lines[i].match(/^\s*("[^"]*"|[^:]+?):(?:\s+(.*)|\s*)$/);
      if (!kv) throw new Error(`cannot read line ${i + 1}: ${lines[i]}`);
      i++;
      m[scalar(kv[1])] = value((kv[2] ?? "").trim(), ind);
    }
    return m;
  }
  function seq(ind) {
    const s = [];
    for (skip(); i < lines.length && indentOf(lines[i]) === ind && /^\s*-( |$)/.test(lines[i]); skip()) {
      const rest = lines[i].slice(ind + 1).trim();
      if (rest === "") { i++; s.push(node(ind + 1)); }
      else if (/^("[^"]*"|[^"'\[{][^:]*?):(\s|$)/.test(rest)) { lines[i] = " ".repeat(ind + 2) + rest; s.push(map(ind + 2)); }
      else { i++; s.push(scalar(rest)); }
    }
    return s;
  }
  return node(0);
}

const problems = [];
for (const file of files) {
  const f = file.replace(/.*\//, "");
  const bad = (msg) => problems.push(`${f}: ${msg}`);
  const docs = fs.readFileSync(file, "utf8").split(/^---\s*$/m).map((d) => parseYaml(d)).filter((d) => d && d.kind);
  const find = (kind, name) => docs.find((d) => d.kind === kind && d.metadata?.name === name);
  const av = docs.filter((d) => d.metadata?.labels?.["app.kubernetes.io/component"] === "av-scanner");
  const expected = find("ConfigMap", "moat-control")?.data?.MOAT_CONTROL_EXPECTED_SERVICES ?? "";
  if (modes.has("off")) {
    if (av.length) bad(`av-scanner disabled, yet ${av.map((d) => `${d.kind}/${d.metadata.name}`).join(", ")}`);
    if (expected.split(",").includes("av-scanner")) bad(`control expects av-scanner's status: ${expected}`);
    continue;
  }
  if (!expected.split(",").includes("av-scanner")) bad(`control does not expect av-scanner's status: ${expected}`);
  const dep = find("Deployment", "moat-av-scanner");
  if (!dep) { bad("no Deployment/moat-av-scanner"); continue; }
  const pod = dep.spec.template.spec;
  const names = (list) => (list ?? []).map((c) => c.name).join(",");
  const byName = Object.fromEntries([...(pod.initContainers ?? []), ...pod.containers].map((c) => [c.name, c]));
  const wantContainers = modes.has("test") ? "av-scanner,clamd" : "av-scanner,clamd,freshclam";
  const wantInit = modes.has("test") ? "test-signatures" : "freshclam-init";
  if (names(pod.containers) !== wantContainers) bad(`containers ${names(pod.containers)}, not ${wantContainers}`);
  if (names(pod.initContainers) !== wantInit) bad(`init containers ${names(pod.initContainers)}, not ${wantInit}`);
  if (pod.automountServiceAccountToken !== false) bad("the pod mounts an API token");
  const sa = find("ServiceAccount", "moat-av-scanner");
  if (!sa || sa.automountServiceAccountToken !== false) bad("ServiceAccount/moat-av-scanner missing or mounting its token");

  // The volumes: socket and signatures.
  const vol = (name) => (pod.volumes ?? []).find((v) => v.name === name);
  if (!vol("clamd-socket")?.emptyDir) bad("no emptyDir clamd-socket");
  if (!vol("signatures")?.emptyDir) bad("no emptyDir signatures");
  const mount = (c, v) => (c?.volumeMounts ?? []).find((m) => m.name === v);
  const socketUsers = Object.values(byName).filter((c) => mount(c, "clamd-socket")).map((c) => c.name).sort().join(",");
  if (socketUsers !== "av-scanner,clamd") bad(`clamd-socket is mounted by ${socketUsers || "nothing"}, not exactly av-scanner and clamd`);
  for (const [c, ro] of [["av-scanner", true], ["clamd", false]]) {
    const m = mount(byName[c], "clamd-socket");
    if (m && (m.mountPath !== "/run/clamav" || (m.readOnly === true) !== ro))
      bad(`${c} mounts clamd-socket at ${m.mountPath}${m.readOnly ? " read-only" : ""}, not /run/clamav${ro ? " read-only" : " read-write"}`);
  }
  for (const c of Object.values(byName)) {
    const m = mount(c, "signatures");
    if (!m) { bad(`${c.name} does not mount the signatures`); continue; }
    const ro = ["av-scanner", "clamd"].includes(c.name);
    if (m.mountPath !== "/var/lib/clamav" || (m.readOnly === true) !== ro)
      bad(`${c.name} mounts signatures at ${m.mountPath}${m.readOnly ? " read-only" : ""}, not /var/lib/clamav${ro ? " read-only" : " read-write"}`);
  }
  // Nothing else in the release reaches clamd's socket.
  for (const d of docs) {
    if (d === dep) continue;
    const spec = d.kind === "Pod" ? d.spec : d.spec?.template?.spec;
    if (!spec) continue;
    const all = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
    if ((spec.volumes ?? []).some((v) => v.name === "clamd-socket") || all.some((c) => (c.volumeMounts ?? []).some((m) => m.mountPath === "/run/clamav")))
      bad(`${d.kind}/${d.metadata.name} reaches clamd's socket`);
  }

  // The worker's wiring and clamd's.
  const env = find("ConfigMap", "moat-av-scanner")?.data ?? {};
  const wantEnv = { MOAT_AV_SCANNER_CLAMD_ADDRESS: "/run/clamav/clamd.ctl", MOAT_AV_SCANNER_SIGNATURE_DIR: "/var/lib/clamav",
    MOAT_AV_SCANNER_HTTP_PORT: "9407", ...(modes.has("test") ? { MOAT_AV_SCANNER_MAX_SIGNATURE_AGE_HOURS: "8760" } : {}) };
  for (const [k, v] of Object.entries(wantEnv)) if (env[k] !== v) bad(`${k} is ${env[k]}, not ${v}`);
  const conf = find("ConfigMap", "moat-av-scanner-clamav")?.data ?? {};
  const clamd = conf["clamd.conf"] ?? "";
  for (const line of ["Foreground yes", "DatabaseDirectory /var/lib/clamav", "LocalSocket /run/clamav/clamd.ctl", "LocalSocketMode 660",
    "AlertExceedsMax yes", "ConcurrentDatabaseReload yes", "TemporaryDirectory /tmp"])
    if (!clamd.split("\n").includes(line)) bad(`clamd.conf lacks "${line}"`);
  for (const key of ["StreamMaxLength", "MaxScanSize", "MaxFileSize", "MaxThreads", "SelfCheck"])
    if (!new RegExp(`^${key} [0-9]+$`, "m").test(clamd)) bad(`clamd.conf lacks ${key}`);
  const c = byName.clamd;
  if (c.command?.join(" ") !== "clamd --config-file=/etc/moat/clamav/clamd.conf") bad(`clamd runs ${c.command?.join(" ")}`);
  if (mount(c, "clamd-config")?.mountPath !== "/etc/moat/clamav") bad("clamd does not mount its clamd.conf at /etc/moat/clamav");
  for (const p of ["startupProbe", "livenessProbe", "readinessProbe"])
    if (c[p]?.exec?.command?.join(" ") !== "clamdscan --config-file=/etc/moat/clamav/clamd.conf --ping 1") bad(`clamd's ${p} is not clamdscan --ping`);
  for (const [p, path] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]])
    if (byName["av-scanner"][p]?.httpGet?.path !== path) bad(`the worker's ${p} is not GET ${path}`);
  const egressPorts = (find("NetworkPolicy", "moat-av-scanner")?.spec?.egress ?? []).flatMap((r) => (r.ports ?? []).map((p) => p.port));
  if (modes.has("test")) {
    if ("freshclam.conf" in conf) bad("freshclam.conf rendered with signatures.source=test");
    if (egressPorts.includes(443)) bad("mirror egress (443) with signatures.source=test");
    const init = byName["test-signatures"];
    if (init?.command?.join(" ") !== "node dist/test-signatures-main.js /var/lib/clamav") bad(`test-signatures runs ${init?.command?.join(" ")}`);
  } else {
    const fc = conf["freshclam.conf"] ?? "";
    if (!/^DatabaseDirectory \/var\/lib\/clamav$/m.test(fc)) bad("freshclam.conf lacks DatabaseDirectory /var/lib/clamav");
    if (!/^(DatabaseMirror|PrivateMirror) \S+$/m.test(fc)) bad("freshclam.conf names no mirror");
    if (/^NotifyClamd/m.test(fc)) bad("freshclam.conf has NotifyClamd (freshclam has no socket)");
    if (!byName.freshclam?.command?.includes("--daemon")) bad("the freshclam sidecar is not a daemon");
    if (byName["freshclam-init"]?.command?.includes("--daemon")) bad("freshclam-init would never exit (--daemon)");
    if (!(egressPorts.includes(443) && egressPorts.includes(80))) bad(`no mirror egress on 443 and 80 (${egressPorts.join(", ")})`);
  }

  // helm test: a scan through NATS (scan-check with the workers' NATS and Redis URLs, admitted as
  // their client) beside the health check.
  const testPod = find("Pod", "moat-av-scanner-test");
  if (!testPod) bad("no av-scanner test pod");
  else {
    const scan = testPod.spec.containers.find((x) => x.name === "scan");
    if (!/^node dist\/scan-check-main\.js --timeout-ms [0-9]+$/.test(scan?.command?.join(" ") ?? ""))
      bad(`the test pod's scan container runs ${scan?.command?.join(" ")}, not scan-check`);
    if (!(scan?.envFrom ?? []).some((e) => e.configMapRef?.name === "moat-av-scanner"))
      bad("the scan container does not get the workers' NATS and Redis URLs (envFrom moat-av-scanner)");
    // URLs from Secrets (external servers) too, exactly as the worker gets them
    for (const key of ["MOAT_NATS_URL", "MOAT_REDIS_URL"]) {
      const of = (c) => JSON.stringify((c?.env ?? []).find((e) => e.name === key) ?? null);
      if (of(scan) !== of(byName["av-scanner"])) bad(`the scan container's ${key} (${of(scan)}) is not the worker's (${of(byName["av-scanner"])})`);
    }
    for (const l of ["moat.io/nats-client", "moat.io/redis-client", "moat.io/av-scanner-client"])
      if (testPod.metadata.labels?.[l] !== "true") bad(`the av-scanner test pod lacks the label ${l}`);
    if (!testPod.spec.containers.some((x) => x.name === "health")) bad("the av-scanner test pod has no health container");
  }

  // Scaling: the CPU HPA, or KEDA's ScaledObject, never both.
  const hpa = find("HorizontalPodAutoscaler", "moat-av-scanner");
  const so = find("ScaledObject", "moat-av-scanner");
  if (modes.has("keda")) {
    if (hpa) bad("an HPA beside KEDA's ScaledObject");
    if (!so) { bad("no ScaledObject/moat-av-scanner"); continue; }
    if (so.apiVersion !== "keda.sh/v1alpha1") bad(`ScaledObject apiVersion ${so.apiVersion}`);
    if (so.spec.scaleTargetRef?.name !== "moat-av-scanner") bad("the ScaledObject scales something else");
    const nats = so.spec.triggers?.find((t) => t.type === "nats-jetstream")?.metadata ?? {};
    const want = { natsServerMonitoringEndpoint: "moat-nats-headless.moat.svc:8222", account: "$G", stream: "MOAT_SCAN", consumer: "av-scanner" };
    for (const [k, v] of Object.entries(want)) if (nats[k] !== v) bad(`nats-jetstream trigger ${k} is ${nats[k]}, not ${v}`);
    if (!/^[0-9]+$/.test(String(nats.lagThreshold))) bad("nats-jetstream trigger has no lagThreshold");
    if (!so.spec.triggers?.some((t) => t.type === "cpu")) bad("no cpu trigger");
    if ("replicas" in dep.spec) bad("the Deployment sets replicas under KEDA");
    const natsNp = find("NetworkPolicy", "moat-nats");
    if (natsNp && !natsNp.spec.ingress.some((r) => r.ports?.some((p) => p.port === "monitor")))
      bad("NATS does not admit the KEDA operator to its monitoring port");
  } else {
    if (so) bad(`a ScaledObject in mode ${mode}`);
    if (!hpa) bad("no HorizontalPodAutoscaler/moat-av-scanner");
    else if (hpa.spec.metrics?.[0]?.resource?.name !== "cpu") bad("the HPA does not scale on CPU");
    if (find("NetworkPolicy", "moat-nats")?.spec.ingress.some((r) => r.ports?.some((p) => p.port === "monitor")))
      bad("NATS admits the monitoring port without KEDA");
  }
}
if (problems.length) { console.log(problems.join("\n")); process.exit(1); }
EOF
}

# av_scanner_render NAME HELM-ARGS... — helm template (release moat, namespace moat, tests on) into $WORK/av-NAME.yaml.
av_scanner_render() {
  local name="$1"
  shift
  helm template moat "$CHART" --namespace moat --kube-version "$KUBE_VERSION" --set tests.enabled=true "$@" \
    >"$WORK/av-$name.yaml"
}

av_scanner_default() {
  av_scanner_render default &&
    av_scanner_render default-gateway -f "$CHART/ci/gateway-agents-values.yaml" &&
    av_scanner_render keda-without-api --set avScanner.autoscaling.keda.enabled=true &&
    av_scanner_render external -f "$CHART/ci/external-nats-redis-values.yaml" &&
    av_scanner_checks default "$WORK/av-default.yaml" "$WORK/av-default-gateway.yaml" "$WORK/av-keda-without-api.yaml" \
      "$WORK/av-external.yaml"
}
av_scanner_keda() {
  av_scanner_render keda --api-versions keda.sh/v1alpha1 --set avScanner.autoscaling.keda.enabled=true &&
    av_scanner_checks keda "$WORK/av-keda.yaml"
}
av_scanner_test() {
  av_scanner_render test --set avScanner.signatures.source=test &&
    av_scanner_render test-keda --api-versions keda.sh/v1alpha1 --set avScanner.signatures.source=test \
      --set avScanner.autoscaling.keda.enabled=true &&
    av_scanner_checks test "$WORK/av-test.yaml" && av_scanner_checks test,keda "$WORK/av-test-keda.yaml"
}
av_scanner_off() {
  av_scanner_render off --set avScanner.enabled=false --api-versions keda.sh/v1alpha1 &&
    av_scanner_checks off "$WORK/av-off.yaml"
}

# clamav_config_parses N HELM-ARGS... — render the av-scanner ClamAV ConfigMap with HELM-ARGS; its
# clamd.conf and freshclam.conf must parse with ClamAV's own clamconf, without errors or warnings.
clamav_config_parses() {
  local dir="$WORK/clamav-$1" key
  shift
  mkdir -p "$dir"
  helm template moat "$CHART" --kube-version "$KUBE_VERSION" "$@" \
    --show-only templates/av-scanner/clamav-configmap.yaml >"$dir/configmap.yaml" || return 1
  for key in clamd.conf freshclam.conf; do
    awk -v key="$key" '$0 == "  " key ": |" { on = 1; next } on && /^    / { print substr($0, 5); next } on { exit }' \
      "$dir/configmap.yaml" >"$dir/$key"
    [[ -s "$dir/$key" ]] || { echo "no $key in the rendered ConfigMap ($*)"; return 1; }
  done
  clamconf -c "$dir" >"$dir/clamconf.out" 2>&1 || { cat "$dir/clamconf.out"; return 1; }
  if grep -E 'ERROR|WARNING' "$dir/clamconf.out"; then echo "(helm args: $*)"; return 1; fi
}

# clamav_configs — the defaults, and private mirrors with extra lines and no concurrent reload, as the
# clamconf of the machine reads them (Debian bookworm's ClamAV: the version the image installs).
clamav_configs() {
  clamav_config_parses defaults &&
    clamav_config_parses options --set "avScanner.freshclam.privateMirrors={https://clamav-mirror.example.internal}" \
      --set "avScanner.freshclam.extraConfig=HTTPProxyServer proxy.example.internal" \
      --set "avScanner.clamd.extraConfig=MaxRecursion 10" --set avScanner.clamd.concurrentDatabaseReload=false \
      --set avScanner.freshclam.testDatabases=true --set avScanner.clamd.streamMaxLength=1023Mi
}

check "av-scanner defaults: worker + clamd + freshclam; socket volume only in the worker (read-only) and clamd; CPU HPA, no ScaledObject (also keda.enabled without the KEDA API, and external NATS/Redis); helm test scans EICAR through NATS with the worker's URLs" av_scanner_default
check "av-scanner with KEDA (--api-versions keda.sh/v1alpha1): ScaledObject (nats-jetstream MOAT_SCAN/av-scanner, \$G, cpu), no HPA, NATS monitoring port admits KEDA" av_scanner_keda
check "av-scanner signatures.source=test: test-signatures init container, no freshclam container or config, age limit 8760 h, no mirror egress" av_scanner_test
check "av-scanner disabled: no av-scanner resource, control does not expect it" av_scanner_off
if command -v clamconf >/dev/null; then
  check "av-scanner: clamd.conf and freshclam.conf parse with clamconf ($(clamconf --version 2>/dev/null | head -1))" clamav_configs
else
  pass "av-scanner: clamd.conf and freshclam.conf with clamconf: skipped (no clamconf: apt-get install clamav)"
fi

# --- 6. negative cases ------------------------------------------------------------------

expect_rejected "schema rejects a typo'd key (control.replicaz)" \
  "additional properties 'replicaz' not allowed" --set control.replicaz=2
expect_rejected "schema rejects a typo'd top-level key (nats.enabeld)" \
  "additional properties 'enabeld' not allowed" --set nats.enabeld=false
expect_rejected "schema rejects a bad enum (logLevel=verbose)" \
  "/logLevel" --set logLevel=verbose
expect_rejected "schema rejects a bad probe kind (control.probes.kind=tcp)" \
  "/control/probes/kind" --set control.probes.kind=tcp
expect_rejected "schema rejects the latest tag (nats.image.tag=latest)" \
  "/nats/image/tag" --set nats.image.tag=latest
expect_rejected "schema rejects the latest tag (image.tag=latest)" \
  "/image/tag" --set image.tag=latest
expect_rejected "schema rejects a non-Redis URL (redis.external.url=http://…)" \
  "/redis/external/url" --set redis.enabled=false --set redis.external.url=http://redis:6379
expect_rejected "validate.yaml: bundled and external NATS both set" \
  "nats: both the bundled server" --set nats.external.url=nats://nats.example:4222
expect_rejected "validate.yaml: bundled and external Redis both set" \
  "redis: both the bundled server" --set redis.external.url=redis://redis.example:6379
expect_rejected "validate.yaml: no NATS at all" \
  "nats: no server" --set nats.enabled=false
expect_rejected "validate.yaml: JetStream store larger than its volume" \
  "maxFileStore \(1Gi\) is larger than nats.persistence.size \(512Mi\)" --set nats.persistence.size=512Mi
expect_rejected "validate.yaml: autoscaling min > max" \
  "minReplicas \(3\) is greater than maxReplicas \(2\)" \
  --set control.autoscaling.enabled=true --set control.autoscaling.minReplicas=3

# The proxy.
expect_rejected "schema rejects a typo'd key under proxy (proxy.replicaz)" \
  "at '/proxy': additional properties 'replicaz' not allowed" --set proxy.replicaz=3
expect_rejected "schema rejects a typo'd key under proxy.transparent (proxy.transparent.enable)" \
  "additional properties 'enable' not allowed" --set proxy.transparent.enable=true
expect_rejected "schema rejects a bad port (proxy.ports.proxy=70000)" \
  "/proxy/ports/proxy" --set proxy.ports.proxy=70000
expect_rejected "schema rejects a bad duration (proxy.timeouts.connect=10 seconds)" \
  "/proxy/timeouts/connect" --set "proxy.timeouts.connect=10 seconds"
expect_rejected "schema rejects a bad urlLists.type (proxy.urlLists.type=nfs)" \
  "/proxy/urlLists/type" --set proxy.urlLists.type=nfs
expect_rejected "schema rejects a firewall table that is not Moat's (firewall.table=filter)" \
  "/firewall/table" --set firewall.enabled=true --set firewall.table=filter
expect_rejected "schema rejects a typo'd key under qos (qos.enabeld)" \
  "/qos" --set qos.enabeld=true
expect_rejected "validate.yaml: qos without the firewall" \
  "qos.enabled=true needs firewall.enabled=true" --set qos.enabled=true
expect_rejected "validate.yaml: transparent proxy with an HPA" \
  "proxy: transparent.enabled=true runs the proxy as a DaemonSet" \
  --set proxy.transparent.enabled=true --set proxy.autoscaling.enabled=true
expect_rejected "validate.yaml: proxy port used twice (http = proxy)" \
  "proxy: port 3128 is used twice, by proxy.ports.proxy and proxy.ports.http" --set proxy.ports.http=3128
expect_rejected "validate.yaml: transparent port collides with the http port" \
  "proxy: port 9402 is used twice, by proxy.ports.http and proxy.transparent.tlsPort" \
  --set proxy.transparent.enabled=true --set proxy.transparent.tlsPort=9402
expect_rejected "validate.yaml: transparent proxy on a port the node holds (10250)" \
  "proxy.ports.http: port 10250 is taken on the gateway node by the kubelet" \
  --set proxy.transparent.enabled=true --set proxy.ports.http=10250
expect_rejected "validate.yaml: transparent proxy on a privileged port" \
  "proxy.ports.proxy: port 80 is privileged on the host network" \
  --set proxy.transparent.enabled=true --set proxy.ports.proxy=80
expect_rejected "validate.yaml: transparent proxy with nothing to intercept" \
  "httpPort and tlsPort are both 0" \
  --set proxy.transparent.enabled=true --set proxy.transparent.httpPort=0 --set proxy.transparent.tlsPort=0
expect_rejected "validate.yaml: urlLists PVC without a claim" \
  "type persistentVolumeClaim needs existingClaim" --set proxy.urlLists.type=persistentVolumeClaim
expect_rejected "validate.yaml: grace period shorter than the proxy's drain" \
  "proxy.terminationGracePeriodSeconds \(20\) leaves the proxy no time to drain" \
  --set proxy.terminationGracePeriodSeconds=20
expect_rejected "validate.yaml: upstream CA ConfigMap without keys" \
  "extraCaConfigMap: name moat-upstream-ca is set but keys is empty" \
  --set proxy.upstreamTrust.extraCaConfigMap.name=moat-upstream-ca
expect_rejected "validate.yaml: upstream CA keys without a ConfigMap" \
  "extraCaConfigMap: keys are set but name is empty" \
  --set "proxy.upstreamTrust.extraCaConfigMap.keys={root.pem}"
expect_rejected "schema rejects an upstream CA key that is a path (../root.pem)" \
  "/proxy/upstreamTrust/extraCaConfigMap/keys" --set proxy.upstreamTrust.extraCaConfigMap.name=ca \
  --set "proxy.upstreamTrust.extraCaConfigMap.keys={../root.pem}"

# tls-mediation.
expect_rejected "schema rejects a typo'd key under tlsMediation (tlsMediation.replicaz)" \
  "at '/tlsMediation': additional properties 'replicaz' not allowed" --set tlsMediation.replicaz=2
expect_rejected "schema rejects a typo'd key under tlsMediation.ca (tlsMediation.ca.secret)" \
  "additional properties 'secret' not allowed" --set tlsMediation.ca.secret=moat-ca
expect_rejected "schema rejects leaves valid longer than 30 days (tlsMediation.leafHours=1000)" \
  "/tlsMediation/leafHours" --set tlsMediation.leafHours=1000
expect_rejected "schema rejects a read-only data volume (tlsMediation.persistence.accessModes={ReadOnlyMany})" \
  "/tlsMediation/persistence/accessModes" --set "tlsMediation.persistence.accessModes={ReadOnlyMany}"
expect_rejected "validate.yaml: two tls-mediation replicas without an imported CA" \
  "tlsMediation: replicas=2 without tlsMediation.ca.existingSecret .*set tlsMediation.ca.existingSecret" \
  --set tlsMediation.replicas=2
expect_rejected "validate.yaml: tls-mediation autoscaling without an imported CA" \
  "tlsMediation: autoscaling without tlsMediation.ca.existingSecret .*set tlsMediation.ca.existingSecret" \
  --set tlsMediation.autoscaling.enabled=true
expect_rejected "validate.yaml: tls-mediation autoscaling min > max" \
  "tlsMediation.autoscaling: minReplicas \(4\) is greater than maxReplicas \(3\)" \
  --set tlsMediation.ca.existingSecret=moat-ca --set tlsMediation.autoscaling.enabled=true \
  --set tlsMediation.autoscaling.minReplicas=4
expect_rejected "validate.yaml: tls-mediation port used twice (ca = http)" \
  "tlsMediation: port 9405 is used twice, by tlsMediation.ports.http and tlsMediation.ports.ca" \
  --set tlsMediation.ports.ca=9405
expect_rejected "validate.yaml: CA Secret with one key for certificate and key" \
  "tlsMediation.ca: certKey and keyKey are both tls.crt" \
  --set tlsMediation.ca.existingSecret=moat-ca --set tlsMediation.ca.keyKey=tls.crt
expect_rejected "validate.yaml: caFrom while the CA port admits anyone" \
  "caFrom is set but caFromAnywhere=true" \
  --set "tlsMediation.networkPolicy.caFrom[0].ipBlock.cidr=192.168.0.0/16"
expect_rejected "schema rejects a typo'd key under tlsMediation.grpcTls (tlsMediation.grpcTls.enable)" \
  "at '/tlsMediation/grpcTls': additional properties 'enable' not allowed" --set tlsMediation.grpcTls.enable=false
expect_rejected "schema rejects certificates valid for 0 days (tlsMediation.grpcTls.validityDays=0)" \
  "/tlsMediation/grpcTls/validityDays" --set tlsMediation.grpcTls.validityDays=0
expect_rejected "validate.yaml: grpcTls.existingSecret while grpcTls is off" \
  "tlsMediation.grpcTls: existingSecret \(moat-grpc-mtls\) is set but grpcTls.enabled=false" \
  --set tlsMediation.grpcTls.enabled=false --set tlsMediation.grpcTls.existingSecret=moat-grpc-mtls
expect_rejected "validate.yaml: the kubelet's gRPC probe against the mutual TLS port" \
  "tlsMediation.probes.kind=grpc: the kubelet's native gRPC probe speaks plaintext only" \
  --set tlsMediation.probes.kind=grpc

# av-scanner.
expect_rejected "schema rejects a typo'd key under avScanner (avScanner.replicaz)" \
  "at '/avScanner': additional properties 'replicaz' not allowed" --set avScanner.replicaz=2
expect_rejected "schema rejects an unknown signature source (avScanner.signatures.source=clamav)" \
  "/avScanner/signatures/source" --set avScanner.signatures.source=clamav
expect_rejected "schema rejects a stream limit without a binary unit (avScanner.clamd.streamMaxLength=64MB)" \
  "/avScanner/clamd/streamMaxLength" --set avScanner.clamd.streamMaxLength=64MB
expect_rejected "schema rejects a concurrency the worker refuses (avScanner.concurrency=100)" \
  "/avScanner/concurrency" --set avScanner.concurrency=100
expect_rejected "schema rejects a NATS monitoring endpoint with a scheme" \
  "/avScanner/autoscaling/keda/natsMonitoringEndpoint" \
  --set avScanner.autoscaling.keda.natsMonitoringEndpoint=http://nats:8222
expect_rejected "validate.yaml: KEDA without autoscaling" \
  "avScanner.autoscaling.keda.enabled=true needs avScanner.autoscaling.enabled=true" \
  --set avScanner.autoscaling.enabled=false --set avScanner.autoscaling.keda.enabled=true
expect_rejected "validate.yaml: av-scanner autoscaling min > max" \
  "avScanner.autoscaling: minReplicas \(5\) is greater than maxReplicas \(4\)" --set avScanner.autoscaling.minReplicas=5
expect_rejected "validate.yaml: av-scanner autoscaling with a container without a CPU request (clamd)" \
  "set avScanner.clamd.resources.requests.cpu" --set avScanner.clamd.resources.requests.cpu=null
expect_rejected "validate.yaml: KEDA with an external NATS and no monitoring endpoint" \
  "with an external NATS, set avScanner.autoscaling.keda.natsMonitoringEndpoint" \
  --set nats.enabled=false --set nats.external.url=nats://nats.example:4222 --set avScanner.autoscaling.keda.enabled=true
expect_rejected "validate.yaml: clamd stream limit over 1023Mi" \
  "avScanner.clamd.streamMaxLength \(2Gi\) is over 1023Mi" --set avScanner.clamd.streamMaxLength=2Gi
expect_rejected "validate.yaml: freshclam without a mirror" \
  "avScanner.freshclam: no mirror" --set "avScanner.freshclam.databaseMirrors=null"
expect_rejected "validate.yaml: clamd's stop delay as long as the grace period" \
  "avScanner.clamd.stopDelaySeconds \(30\) must be less than avScanner.terminationGracePeriodSeconds \(30\)" \
  --set avScanner.clamd.stopDelaySeconds=30

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
