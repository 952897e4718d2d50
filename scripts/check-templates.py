#!/usr/bin/env python3
"""Validates templates/<handler>/ for every handler with a Dockerfile: each file is well-formed JSON
with the fields RunPod's APIs require (v1 templates and endpoints, v2 load-balancing endpoints, the
Hub's hub.json and tests.json); image names match the Dockerfiles; every variable a template or
hub.json sets is documented in variables.json; every documented variable is read by the handler or
the runtime; every variable the handler's configuration reads is documented."""
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIRED = {
    "template.json": ["name", "imageName", "isServerless", "containerDiskInGb", "env", "ports"],
    "template-lb.json": ["name", "imageName", "isServerless", "containerDiskInGb", "env", "ports"],
    "endpoint.json": ["name", "templateId", "computeType", "workersMin", "workersMax", "idleTimeout", "scalerType", "scalerValue",
                      "executionTimeoutMs", "flashboot"],
    "endpoint-lb.json": ["name", "type", "templateId", "scaling", "workers"],
    "hub.json": ["title", "description", "type", "category", "config"],
    "tests.json": ["tests", "config"],
    "variables.json": ["variables"],
}
problems = []


def literals(paths):
    found = set()
    for path in paths:
        found.update(re.findall(r'"([A-Z][A-Z0-9_]{3,})"', open(path).read()))
    return found


runtime_sources = glob.glob(os.path.join(ROOT, "Sources", "**", "*.swift"), recursive=True)
runtime_reads = literals(runtime_sources)
for dockerfile in sorted(glob.glob(os.path.join(ROOT, "Dockerfiles", "*.Dockerfile"))):
    handler = os.path.basename(dockerfile)[: -len(".Dockerfile")]
    folder = os.path.join(ROOT, "templates", handler)
    documents = {}
    for name, fields in REQUIRED.items():
        path = os.path.join(folder, name)
        try:
            documents[name] = json.load(open(path))
        except FileNotFoundError:
            problems.append(f"templates/{handler}/{name} is missing")
            continue
        except json.JSONDecodeError as error:
            problems.append(f"templates/{handler}/{name} is not JSON: {error}")
            continue
        for field in fields:
            if field not in documents[name]:
                problems.append(f"templates/{handler}/{name} has no {field}")
    if len(documents) < len(REQUIRED):
        continue
    for name in ("template.json", "template-lb.json"):
        image = documents[name]["imageName"]
        if not re.fullmatch(rf"[^/\s]+(/[^/\s]+)*/{re.escape(handler)}:[\w.-]+", image):
            problems.append(f"templates/{handler}/{name}: imageName {image} is not <registry>/{handler}:<tag>, the image Dockerfiles/{handler}.Dockerfile builds")
    if documents["template-lb.json"]["ports"] == [] or "PORT" not in documents["template-lb.json"]["env"]:
        problems.append(f"templates/{handler}/template-lb.json: a load-balancing worker needs PORT in env and a port in ports")
    lb = documents["endpoint-lb.json"]
    if lb["type"] != "LOAD_BALANCER" or lb["scaling"].get("type") != "REQUEST_COUNT":
        problems.append(f"templates/{handler}/endpoint-lb.json: type must be LOAD_BALANCER with REQUEST_COUNT scaling")
    if documents["hub.json"]["type"] != "serverless" or "runsOn" not in documents["hub.json"]["config"]:
        problems.append(f"templates/{handler}/hub.json: type must be serverless and config must say runsOn")
    for test in documents["tests.json"]["tests"]:
        if "name" not in test or "input" not in test:
            problems.append(f"templates/{handler}/tests.json: every test needs a name and an input")

    documented = {variable["name"] for variable in documents["variables.json"]["variables"]}
    for variable in documents["variables.json"]["variables"]:
        if not {"name", "default", "meaning"} <= set(variable) or not variable["meaning"]:
            problems.append(f"templates/{handler}/variables.json: {variable.get('name')} needs a default and a meaning")
    handler_sources = glob.glob(os.path.join(ROOT, "Handlers", "*", "*.swift"))
    handler_folder = [path for path in handler_sources if os.path.basename(os.path.dirname(path)).lower() == handler]
    reads = runtime_reads | literals(handler_folder) | {"PORT", "PORT_HEALTH"}
    for name in ("template.json", "template-lb.json"):
        for key in documents[name]["env"]:
            if key not in documented:
                problems.append(f"templates/{handler}/{name} sets {key}, which variables.json does not document")
    for entry in documents["hub.json"]["config"].get("env", []):
        if entry["key"] not in documented:
            problems.append(f"templates/{handler}/hub.json sets {entry['key']}, which variables.json does not document")
    for name in sorted(documented - reads):
        problems.append(f"templates/{handler}/variables.json documents {name}, which neither the handler nor the runtime reads")
    configuration = [path for path in handler_folder if path.endswith("Configuration.swift") or os.path.basename(path) == f"{os.path.basename(os.path.dirname(path))}.swift"]
    for name in sorted(literals(configuration) - documented):
        problems.append(f"templates/{handler}/variables.json does not document {name}, which the handler reads")

for problem in problems:
    print("check-templates:", problem, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"templates: {len(glob.glob(os.path.join(ROOT, 'Dockerfiles', '*.Dockerfile')))} handlers, every file well-formed and complete")
