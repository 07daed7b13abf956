"""Products: the catalogue whose prices quotes are priced from (store/services/quotes.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from store import normalize
from store.actor import Actor
from store.models import Product
from store.models.enums import Role
from store.services.crud import Access, EntitySpec, register


def _prepare_product(session: Session, actor: Actor, values: dict[str, Any], existing: Any) -> dict[str, Any]:
    if values.get("currency"):
        values["currency"] = normalize.currency(values["currency"])
    return values


products = register(EntitySpec(
    name="product", plural="products", model=Product, access=Access.WORKSPACE,
    write_roles=(Role.manager, Role.admin), unique=("sku",), search=("name", "sku"), default_sort="name",
    prepare=_prepare_product,
))
