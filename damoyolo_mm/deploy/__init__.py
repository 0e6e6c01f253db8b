"""Deployment helpers (MMDeploy rewriters); import ``damoyolo_mm.deploy`` explicitly, it needs the ``deploy`` extra."""
