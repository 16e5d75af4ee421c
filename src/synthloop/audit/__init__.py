"""Audits of a generated set against human data: `audit_bias` (attribute distributions, drift,
counterfactual flips). See docs/audit.md."""

from synthloop.audit.bias import AUDIT_FILE, AxisResult, BiasReport, audit_bias, audit_run, write_report
from synthloop.audit.config import AuditConfig, load_config
from synthloop.audit.data import AuditSet, load_set

__all__ = ["AUDIT_FILE", "AuditConfig", "AuditSet", "AxisResult", "BiasReport", "audit_bias", "audit_run", "load_config", "load_set",
           "write_report"]
