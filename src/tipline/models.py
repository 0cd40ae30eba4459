"""Imports every domain's models so the metadata is complete (migrations, checks)."""

from __future__ import annotations

from tipline.accounts import models as accounts_models
from tipline.audit import models as audit_models
from tipline.cases import models as cases_models
from tipline.db import Base
from tipline.esp import models as esp_models
from tipline.evidence import models as evidence_models
from tipline.matching import models as matching_models
from tipline.messaging import models as messaging_models
from tipline.reports import models as reports_models
from tipline.routing import models as routing_models
from tipline.triage import models as triage_models

__all__ = [
    "Base",
    "accounts_models",
    "audit_models",
    "cases_models",
    "esp_models",
    "evidence_models",
    "matching_models",
    "messaging_models",
    "reports_models",
    "routing_models",
    "triage_models",
]
