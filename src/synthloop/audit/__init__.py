"""Audits of a generated set against human data: `audit_bias` (attribute distributions, drift,
counterfactual flips). See docs/audit.md."""

from synthloop.audit.bias import AxisResult, BiasReport, audit_bias, write_report
from synthloop.audit.config import AuditConfig, load_config
from synthloop.audit.data import AuditSet, load_set

__all__ = ["AuditConfig", "AuditSet", "AxisResult", "BiasReport", "audit_bias", "load_config", "load_set",
           "write_report"]
