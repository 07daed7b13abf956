"""All SQL lives here. Importing this package registers every entity's spec."""

from store.services import catalog, config, crm, engagement, jobs, org, quotes, sales, stage_stays  # noqa: F401
from store.services.crud import REGISTRY, spec_for

__all__ = ["REGISTRY", "spec_for"]
