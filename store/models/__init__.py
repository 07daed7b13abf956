"""All ORM models; importing this package registers every table on Base.metadata."""

from store.models.base import Base
from store.models.catalog import Product, Quote, QuoteLineItem
from store.models.config import CustomFieldDefinition, Territory, TerritoryMember
from store.models.crm import Company, Contact
from store.models.engagement import (
    Activity,
    ActivityDayCount,
    ActivityTarget,
    CallRecording,
    Email,
    EmailAttachment,
    EmailParticipant,
    Note,
    Task,
    Transcript,
)
from store.models.org import ApiToken, Team, User, Workspace
from store.models.sales import Deal, DealContact, DealHistory, DealStageStay, Pipeline, Stage
from store.models.scoring import LeadAssignment, ScoringModel
from store.models.system import Approval, AuditLog, InboundToken, Job

__all__ = [
    "Activity",
    "ActivityDayCount",
    "ActivityTarget",
    "ApiToken",
    "Approval",
    "AuditLog",
    "Base",
    "CallRecording",
    "Company",
    "Contact",
    "CustomFieldDefinition",
    "Deal",
    "DealContact",
    "DealHistory",
    "DealStageStay",
    "Email",
    "EmailAttachment",
    "EmailParticipant",
    "InboundToken",
    "Job",
    "LeadAssignment",
    "Note",
    "Pipeline",
    "Product",
    "Quote",
    "QuoteLineItem",
    "ScoringModel",
    "Stage",
    "Task",
    "Team",
    "Territory",
    "TerritoryMember",
    "Transcript",
    "User",
    "Workspace",
]
