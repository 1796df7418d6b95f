#!/usr/bin/env bash
# Undo `make minikube`: delete the minikube profile it created, and with it the
# app, Istio and the built images. KEEP_CLUSTER=1 instead removes only the app
# and Istio from the profile and leaves minikube running.
set -euo pipefail

cd "$(dirname "$0")/.."

PROFILE="${MINIKUBE_PROFILE:-taskmesh}"
NAMESPACE=default

command -v minikube >/dev/null 2>&1 || { echo "minikube-down.sh: minikube is not installed" >&2; exit 1; }

if ! minikube profile list --output json 2>/dev/null | grep -Eq "\"Name\": *\"$PROFILE\""; then
  echo "minikube profile $PROFILE does not exist; nothing to do"
  exit 0
fi

if [[ "${KEEP_CLUSTER:-0}" == 1 ]]; then
  kubectl config use-context "$PROFILE"
  kubectl kustomize --load-restrictor LoadRestrictionsNone k8s | kubectl delete --ignore-not-found -f -
  kubectl label namespace "$NAMESPACE" istio-injection- || true
  if command -v istioctl >/dev/null 2>&1; then
    istioctl uninstall --purge -y
  fi
  kubectl delete namespace istio-system --ignore-not-found
else
  minikube delete --profile "$PROFILE"
fi
