# installer: build, test, lint, lab. `make lab` and `make test` are the two set-up commands the
# README promises on a fresh machine (both install the Debian packages they need first: prereqs);
# .ci/run calls the same targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO      ?= go
PKG     := installer.dev/installer
BIN     := bin/installer
# Stamped into the binary; .goreleaser.yaml sets the same three variables.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell git log -1 --format=%cI 2>/dev/null || echo unknown)
LDFLAGS := -s -w \
	-X $(PKG)/pkg/buildinfo.Version=$(VERSION) \
	-X $(PKG)/pkg/buildinfo.Commit=$(COMMIT) \
	-X $(PKG)/pkg/buildinfo.Date=$(DATE)

.PHONY: build
build: ## build bin/installer with version, commit and date stamped in
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/installer

LAB     := bin/lab

.PHONY: lab-tool
lab-tool:
	$(GO) build -o $(LAB) ./lab/cmd/lab

# The machine's prerequisites, checked first (about a second) by every target that needs them: the Debian
# packages of hack/lab-prereqs.sh, installed when missing, and root.
.PHONY: prereqs
prereqs: ## install the missing Debian packages make test and make lab need (hack/lab-prereqs.sh; as root)
	./hack/lab-prereqs.sh install --need-root

.PHONY: test
test: prereqs verify-replace lab-tool ## everything that runs on one machine without the lab (the README's test command)
	@# The real binaries the tests run (kubeadm of every release, etcd, kube-apiserver), built once and
	@# cached, so no test waits out go test's timeout on another package's build lock.
	$(LAB) build --k8s all --only kubeadm
	$(LAB) build --only etcd,kube-apiserver
	$(GO) test -timeout 30m ./...

.PHONY: verify-replace
verify-replace: ## go.mod's staging replace block matches the pinned k8s.io/kubernetes
	./hack/verify-k8s-replace.sh

.PHONY: lint
lint: ## gofmt, go vet, staticcheck, shellcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@# The shell scripts the installer runs on hosts (pkg/scripts' tests run shellcheck over them too),
	@# and the repository's own.
	shellcheck pkg/scripts/*.sh hack/*.sh .ci/run
	@# The lab's stand-in components are nested modules (so ./... never pulls them in): vet them too.
	cd lab/standins && $(GO) vet ./...
	cd lab/standins/ccm && $(GO) vet ./...

.PHONY: checksums
checksums: ## rewrite pkg/versions/checksums.txt from upstream's published checksums (needs dl.k8s.io and github.com)
	$(GO) run ./hack/update-checksums

.PHONY: release-check
release-check: ## validate .goreleaser.yaml with the pinned goreleaser (hack/tools/goreleaser)
	cd hack/tools/goreleaser && $(GO) build -o ../../../bin/goreleaser github.com/goreleaser/goreleaser/v2
	./bin/goreleaser check

.PHONY: lab-build
lab-build: prereqs lab-tool ## build (or find cached) the default release's lab set: binaries, images, mirror files (lab build --k8s all: every release)
	$(LAB) build

# E2E_TIMEOUT: go test's limit for the whole run (TestConformanceFull: about 70 min on 2 cores; give it 3h).
E2E_TIMEOUT ?= 85m
.PHONY: e2e
e2e: prereqs build lab-build ## the lab scenarios (test/e2e, build tag e2e; E2E_RUN=regexp selects)
	$(GO) test -tags e2e -p 1 -count=1 -timeout $(E2E_TIMEOUT) ./test/e2e $(if $(E2E_RUN),-run '$(E2E_RUN)') -v

# LAB_INSTALL=package installs kubeadm, kubelet and kubectl from the lab's signed apt repository.
LAB_INSTALL ?= binary

.PHONY: lab
lab: prereqs build lab-build ## start the offline lab (3 hosts) and create a cluster in it (LAB_INSTALL=binary|package)
	@if [ -f .lab/cluster.yaml ]; then echo "lab is up (.lab/cluster.yaml); reusing it"; else $(LAB) up -n 3 --install $(LAB_INSTALL); fi
	./$(BIN) create cluster -f .lab/cluster.yaml --state-dir .lab/state
	@kubectl=$$($(LAB) build --only kubectl | tail -1 | awk "{print \$$NF}"); \
	  $$kubectl --kubeconfig .lab/state/admin.conf get nodes -o wide; \
	  $$kubectl --kubeconfig .lab/state/admin.conf get pods -A -o wide

.PHONY: lab-down
lab-down: lab-tool ## stop and remove everything the lab created
	$(LAB) down

# FOCUS and SKIP are ginkgo regexps for a quick run, e.g. make conformance FOCUS='\[sig-network\]'.
.PHONY: conformance
conformance: lab-tool ## kubeadm suite + [Conformance] tests against the running lab (FOCUS=, SKIP=; docs/conformance.md)
	$(LAB) conformance $(if $(FOCUS),--focus '$(FOCUS)') $(if $(SKIP),--skip '$(SKIP)')

# N: comma-separated host counts (each one sshd on 127.0.1.x); CLIENTS: installer,floor,ansible.
N       ?= 10,50,200
CLIENTS ?= installer,floor,ansible

.PHONY: bench-scale
bench-scale: prereqs ## the installer's engine vs Ansible vs bare x/crypto/ssh on N real sshds (docs/performance.md)
	@command -v ansible-playbook >/dev/null || { echo "installing Debian's ansible-core for the side-by-side run"; \
	  apt-get install -y --no-install-recommends ansible-core >/dev/null; }
	$(GO) run ./bench/scale -n '$(N)' -clients '$(CLIENTS)'

.PHONY: clean
clean: ## remove build outputs (not the lab's caches in ~/.cache/installer-lab)
	rm -rf bin dist out

.PHONY: help
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'
