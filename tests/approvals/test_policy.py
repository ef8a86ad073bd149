"""Which calls need approval: the tenant's rules, evaluated outside the model (pure, no database)."""

from approvals.policy import Rule, condition_problem, requirement


def need(rules, *, tool="email.send", risk=3, arguments=None, agent_id=1):
    return requirement(rules, agent_id=agent_id, tool=tool, risk=risk, arguments=arguments or {})


def test_without_rules_risk_three_and_up_needs_one_approval():
    assert need([], risk=3).required_approvals == 1
    assert need([], risk=2).required_approvals == 0
    assert "default policy" in need([], risk=4).rule.describe()


def test_the_most_specific_rule_wins_and_ties_go_to_the_strictest():
    rules = [Rule(required_approvals=1, min_risk=3), Rule(required_approvals=2, min_risk=4),
             Rule(required_approvals=0, tool="email.send", agent_id=7, min_risk=0, name="trusted mailer")]
    assert need(rules, risk=4, tool="billing.create_invoice").required_approvals == 2
    assert need(rules, risk=3, agent_id=7).required_approvals == 0  # the override for that agent and tool
    assert need(rules, risk=3, agent_id=8).required_approvals == 1


def test_argument_conditions_tighten_a_tool():
    rules = [Rule(required_approvals=1, tool="billing.create_invoice"),
             Rule(required_approvals=2, tool="billing.create_invoice",
                  condition={"argument": "amount_usd", "op": "gt", "value": 1000}, name="large invoices")]
    assert need(rules, tool="billing.create_invoice", risk=4, arguments={"amount_usd": 400}).required_approvals == 1
    large = need(rules, tool="billing.create_invoice", risk=4, arguments={"amount_usd": 5000})
    assert large.required_approvals == 2 and "amount_usd > 1000" in large.rule.describe()
    assert need(rules, tool="billing.create_invoice", risk=4, arguments={"amount_usd": "lots"}).required_approvals == 1


def test_email_outside_the_tenant_domains():
    rules = [Rule(required_approvals=0, tool="email.send", min_risk=0),
             Rule(required_approvals=1, tool="email.send", min_risk=0,
                  condition={"argument": "to", "op": "domain_not_in", "value": "acme.example, acme.com"})]
    assert need(rules, arguments={"to": "dana@acme.example"}).required_approvals == 0
    assert need(rules, arguments={"to": "someone@gmail.example"}).required_approvals == 1


def test_bad_conditions_are_explained():
    assert "Unknown condition" in condition_problem({"argument": "x", "op": "like", "value": 1})
    assert condition_problem({"argument": "amount_usd", "op": "gt", "value": "ten"}) == "Compare with a number."
    assert condition_problem({"argument": "amount_usd", "op": "gt", "value": 10}) == ""
