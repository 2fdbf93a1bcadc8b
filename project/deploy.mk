# Deployment targets: Docker images, docker compose, Docker Swarm, Kubernetes
# and the offline checks of their files. Included by the top-level Makefile;
# also usable alone from the workspace root: make -f project/deploy.mk TARGET.
# See docs/deploy.md.
#
# Settings (make VAR=value or the environment):
#   IMAGE_PREFIX  image names are IMAGE_PREFIX/<service>:TAG (microservices);
#                 a registry path for Swarm and Kubernetes
#   TAG           image tag (latest)
#   STACK         the Swarm stack's name (microservices)
#   COMPOSE_PROJECT  the compose project's name (microservices)
#   DEPLOY_ENV_FILE  settings and credentials (project/.env, made from
#                 project/.env.example by `make up` if missing)
#   DEPLOY_SECRETS_DIR  where `make up` writes compose's secrets from it
#                 (project/secrets)
#   SWARM_FILES   extra stack files laid over project/swarm.yml
#   OBSERVABILITY_OTLP_ENDPOINT  where up-observability and
#                 swarm-observability have the services send their traces
#                 (http://jaeger:4317, the stack's own Jaeger)
#   SKIP_DOCKER_TESTS=1  `make test` skips the Docker tests (they fail, and
#                 say why, where no Docker engine can run)

SHELL := /bin/bash

# Keep the including Makefile's default goal; alone, list these targets.
deploy_saved_goal := $(.DEFAULT_GOAL)

IMAGE_PREFIX ?= microservices
TAG ?= latest
STACK ?= microservices
COMPOSE_PROJECT ?= microservices
DEPLOY_ENV_FILE ?= project/.env
DEPLOY_SERVICES := broker-service authentication-service logger-service mail-service listener-service front-end
DEPLOY_IMAGES := $(DEPLOY_SERVICES) caddy
DEPLOY_BUILD_TARGETS := $(addprefix build-,$(DEPLOY_IMAGES))

# BuildKit, so the six images share their identical build stages. A docker
# CLI without its buildx component cannot use it; Debian's engine package
# brings a CLI that can (/usr/bin/docker): then that one goes first on PATH.
DOCKER_PATH = $(shell docker buildx version >/dev/null 2>&1 || [ ! -x /usr/bin/docker ] || echo 'PATH=/usr/bin:$$PATH')
DOCKER_BUILD = $(DOCKER_PATH) DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
# `docker compose` (v2) where the plugin is installed, else `docker-compose`.
COMPOSE_CMD ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE = $(DOCKER_BUILD) IMAGE_PREFIX=$(IMAGE_PREFIX) TAG=$(TAG) SECRETS_DIR=$(DEPLOY_SECRETS_DIR) \
	$(COMPOSE_CMD) --project-name $(COMPOSE_PROJECT) --env-file $(DEPLOY_ENV_FILE) -f project/docker-compose.yml

deploy_dockerfile = $(if $(filter caddy,$1),project/caddy.dockerfile,$1/$1.dockerfile)

.PHONY: deploy-help stand-ins deploy-secrets up up-build up-observability down build-images registry registry-stop push-images \
	$(DEPLOY_BUILD_TARGETS) swarm-deploy swarm-observability swarm-rm k8s-secrets k8s-apply k8s-delete lint-deploy test-docker test-compose test-swarm

deploy-help:
	@grep -E '^[a-z0-9-]+:.*## ' project/deploy.mk | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(DEPLOY_ENV_FILE):
	@cp project/.env.example $@
	@echo "created $@ from project/.env.example: change its passwords before anything but a local trial"

# The compose stack's Docker secrets (docs/security.md): written from the
# env file into DEPLOY_SECRETS_DIR (git-ignored) before every up.
DEPLOY_SECRETS_DIR ?= $(CURDIR)/project/secrets
deploy-secrets: | $(DEPLOY_ENV_FILE)
	@project/deploy-secrets.sh $(DEPLOY_ENV_FILE) $(DEPLOY_SECRETS_DIR)

# STAND_INS: only these images (default: all but the observability ones).
STAND_INS ?=
stand-ins: ## the base and infrastructure images, pulled or, with no registry, built locally (project/stand-ins)
	@$(DOCKER_PATH) project/stand-ins/build.sh $(STAND_INS)

up: stand-ins deploy-secrets | $(DEPLOY_ENV_FILE) ## docker compose: start the system (builds missing images); page on http://localhost
	$(COMPOSE) up -d
	@echo "test page http://localhost  broker http://localhost/api/  mail http://localhost:8025  rabbitmq http://localhost:15672"

up-build: stand-ins deploy-secrets | $(DEPLOY_ENV_FILE) ## docker compose: build every image, then start the system
	$(COMPOSE) up -d --build
	@echo "test page http://localhost  broker http://localhost/api/  mail http://localhost:8025  rabbitmq http://localhost:15672"

# Prometheus, Jaeger and Grafana: the compose profile observability, official
# images pulled from Docker Hub; with no registry, Prometheus has a stand-in
# and Jaeger and Grafana none (docs/deploy.md, "Observability").
OBSERVABILITY_OTLP_ENDPOINT ?= http://jaeger:4317
up-observability: stand-ins deploy-secrets | $(DEPLOY_ENV_FILE) ## docker compose: `make up` plus Prometheus, Jaeger and Grafana, traces on
	@$(MAKE) --no-print-directory stand-ins STAND_INS=prom/prometheus:v2.53.2
	OTEL_EXPORTER_OTLP_ENDPOINT=$(OBSERVABILITY_OTLP_ENDPOINT) $(COMPOSE) --profile observability up -d
	@echo "test page http://localhost  prometheus http://localhost:9090  jaeger http://localhost:16686  grafana http://localhost:3000"

# With the profile, so the observability containers go too when they run.
down: ## docker compose: stop and remove the containers (the volumes stay)
	$(COMPOSE) --profile observability down

$(DEPLOY_BUILD_TARGETS): build-%: stand-ins
	$(DOCKER_BUILD) docker build -f $(call deploy_dockerfile,$*) -t $(IMAGE_PREFIX)/$*:$(TAG) .

build-images: $(DEPLOY_BUILD_TARGETS) ## build the six service images and Caddy's (build-<service> builds one)

registry: ## a local image registry on localhost:5000 (Debian's docker-registry, run natively): IMAGE_PREFIX=localhost:5000/microservices make build-images push-images
	@project/registry.sh start

registry-stop: ## stop the registry that `make registry` started
	@project/registry.sh stop

push-images: ## push the images to the registry named by IMAGE_PREFIX
	@set -e; for image in $(DEPLOY_IMAGES); do docker push $(IMAGE_PREFIX)/$$image:$(TAG); done

swarm-deploy: | $(DEPLOY_ENV_FILE) ## Docker Swarm: create the missing secrets from project/.env, deploy project/swarm.yml as STACK
	ENV_FILE=$(DEPLOY_ENV_FILE) IMAGE_PREFIX=$(IMAGE_PREFIX) TAG=$(TAG) SWARM_FILES="$(SWARM_FILES)" \
		project/swarm-deploy.sh $(STACK)

swarm-observability: | $(DEPLOY_ENV_FILE) ## Docker Swarm: swarm-deploy with project/swarm-observability.yml (Prometheus, Jaeger, Grafana; traces on)
	OTEL_EXPORTER_OTLP_ENDPOINT=$(OBSERVABILITY_OTLP_ENDPOINT) ENV_FILE=$(DEPLOY_ENV_FILE) IMAGE_PREFIX=$(IMAGE_PREFIX) TAG=$(TAG) \
		SWARM_FILES="project/swarm-observability.yml $(SWARM_FILES)" project/swarm-deploy.sh $(STACK)

swarm-rm: ## Docker Swarm: remove the stack (volumes and secrets stay)
	docker stack rm $(STACK)

# The Kubernetes Secret's files and the databases' init scripts, which the
# kustomization generates its Secret and ConfigMap from (git-ignored).
K8S_GENERATED = project/k8s/generated
k8s-secrets: | $(DEPLOY_ENV_FILE) ## Kubernetes: write project/k8s/generated/ (the Secret's files from project/.env, the init scripts)
	@project/deploy-secrets.sh $(DEPLOY_ENV_FILE) $(K8S_GENERATED)
	@cp project/initdb/authentication.sh project/initdb/logger.js $(K8S_GENERATED)/
	@echo "wrote $(K8S_GENERATED): kubectl apply -k project/k8s"

k8s-apply: k8s-secrets ## Kubernetes: kubectl apply -k project/k8s
	kubectl apply -k project/k8s

k8s-delete: ## Kubernetes: delete everything, the namespace and the databases' volumes included
	kubectl delete -k project/k8s --ignore-not-found

lint-deploy: ## check every deployment file offline (installs the validators when missing)
	@project/lint-deploy.sh

test-docker: ## the Docker path for real: engine, images, compose and Swarm end to end (docs/deploy.md)
	@project/docker/test.sh

test-compose: ## the compose scenario alone (needs the engine and the images: make test-docker once)
	@project/docker/test.sh compose

test-swarm: ## the Swarm scenario alone (likewise)
	@project/docker/test.sh swarm

ifeq ($(deploy_saved_goal),)
ifeq ($(words $(MAKEFILE_LIST)),1)
.DEFAULT_GOAL := deploy-help
else
# Included before any target: the including Makefile's next target is the default.
.DEFAULT_GOAL :=
endif
else
.DEFAULT_GOAL := $(deploy_saved_goal)
endif
