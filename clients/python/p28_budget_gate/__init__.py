"""P2.8 portfolio budget gate for a Python Governor.

In-process (one atomic Redis script per decision, the one the Node gate calls)::

    from p28_budget_gate import BudgetGate
    gate = BudgetGate(self.redis)            # the Governor's own redis-py client
    if gate.check_portfolio_budget(symbol, plan_id, action=action, side=side, qty=qty, notional_usd=notional):
        self._block_plan(plan_id, symbol, "p28_budget_violation")

Over the worker's HTTP API: ``p28_budget_gate.http_client.P28BudgetClient``.
"""

from .decision import CLOSE_ACTIONS, Decision, Verdict
from .gate import DEFAULTS, BudgetGate
from .http_client import P28BudgetClient

__all__ = ["BudgetGate", "Decision", "Verdict", "P28BudgetClient", "CLOSE_ACTIONS", "DEFAULTS"]
