"""The privileges infra/template.yaml gives each function, checked.

Reads the template as CloudFormation does (cfn-lint's loader, intrinsic
functions included) and evaluates each function's policy statements the
way IAM does for one DynamoDB item: an explicit Deny wins, otherwise an
Allow must match the action, the table and its LeadingKeys condition.

Fails when:
- a function other than admin may write an API key or a tenant secret, in
  the table or in Secrets Manager (the internet-facing chat functions above
  all);
- any function may update or delete an audit event, or a function other
  than the dispatcher and the scheduler may write the audit log at all (the
  others queue their events, which the dispatcher files);
- a function resolves a secret into its configuration instead of reading
  it at run time (`{{resolve:secretsmanager:...}}`).

`python tests/template_privileges.py --table` prints each function's table
privileges (docs/DEPLOY.md). The checks are proven to catch a regression:
the same checks run over a copy of the template with a chat function's Deny
removed must fail.
"""

import copy
import fnmatch
import json
import sys

from cfnlint.decode import cfn_yaml

TEMPLATE = "infra/template.yaml"
CHAT = ["SlackFunction", "TelegramFunction", "DiscordFunction"]
# The functions that file queued audit events, and so write the log.
AUDIT_WRITERS = ["DispatchFunction", "SchedulerFunction"]
WRITES = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
          "dynamodb:BatchWriteItem", "dynamodb:PartiQLInsert",
          "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"]
# Sample partition keys of the records that matter (shared/domain/src/keys.rs).
API_KEY = "_#APIKEY"
TENANT_SECRET = "acme#SECRET"
AUDIT = "acme#AUDIT"
INCIDENT = "acme#INC#inc_01"


def functions(t):
    return {n: r for n, r in t["Resources"].items()
            if r.get("Type") == "AWS::Serverless::Function"}


def statements(fn):
    out = []
    for policy in fn["Properties"].get("Policies", []):
        if not isinstance(policy, dict):
            continue
        for st in policy.get("Statement", []):
            if "Fn::If" in st:
                # Either branch may hold: count the statement branch.
                st = next((b for b in st["Fn::If"][1:] if isinstance(b, dict) and "Effect" in b), None)
                if st is None:
                    continue
            out.append(st)
    return out


def as_list(v):
    return v if isinstance(v, list) else [v]


def on_table(st):
    return any(r == {"Fn::GetAtt": ["Table", "Arn"]} or r == "*" for r in as_list(st.get("Resource", [])))


def action_matches(st, action):
    return any(fnmatch.fnmatchcase(action, a) for a in as_list(st.get("Action", [])))


def condition_holds(st, pk):
    cond = st.get("Condition")
    if not cond:
        return True
    for op, body in cond.items():
        for key, patterns in body.items():
            if key != "dynamodb:LeadingKeys":
                # A condition this check does not model: assume it may hold.
                continue
            hit = any(fnmatch.fnmatchcase(pk, p) for p in as_list(patterns))
            if op.endswith("StringNotLike"):
                hit = not hit
            if not hit:
                return False
    return True


def may(fn, action, pk):
    """Whether the function may perform `action` on an item of partition `pk`."""
    sts = [s for s in statements(fn) if on_table(s) and action_matches(s, action)]
    if any(s["Effect"] == "Deny" and condition_holds(s, pk) for s in sts):
        return False
    return any(s["Effect"] == "Allow" and condition_holds(s, pk) for s in sts)


def violations(t):
    out = []
    fns = functions(t)
    glob = t.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    for name, fn in fns.items():
        if name in AUDIT_WRITERS:
            continue
        # The audit log is the dispatcher's and the scheduler's to write:
        # every other function queues its events, the chat functions above all.
        for action in WRITES:
            if may(fn, action, AUDIT):
                out.append(f"{name} may {action} on {AUDIT}")
        env = dict(glob)
        env.update(fn["Properties"].get("Environment", {}).get("Variables", {}))
        if str(env.get("FIREWATCH_AUDIT_VIA_DISPATCHER")).lower() != "true":
            out.append(f"{name} does not queue its audit events (FIREWATCH_AUDIT_VIA_DISPATCHER)")
    for name in CHAT + [n for n in fns if n not in CHAT and n != "AdminFunction"]:
        for action in WRITES:
            for pk in (API_KEY, TENANT_SECRET):
                if may(fns[name], action, pk):
                    out.append(f"{name} may {action} on {pk}")
    for name, fn in fns.items():
        for action in ("dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                       "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"):
            if may(fn, action, AUDIT):
                out.append(f"{name} may {action} on {AUDIT}")
        if name != "AdminFunction":
            for st in statements(fn):
                for action in ("secretsmanager:CreateSecret", "secretsmanager:PutSecretValue",
                               "secretsmanager:DeleteSecret"):
                    if st["Effect"] == "Allow" and action_matches(st, action):
                        out.append(f"{name} may {action}")
        env = json.dumps(fn["Properties"].get("Environment", {}), default=str)
        if "resolve:secretsmanager" in env:
            out.append(f"{name} resolves a secret into its configuration")
    return out


def table(t):
    rows = ["| function | writes API keys | writes tenant secrets | appends audit | updates/deletes audit | writes incidents |",
            "|---|---|---|---|---|---|"]
    yes = lambda b: "yes" if b else "no"
    for name, fn in sorted(functions(t).items()):
        rows.append("| {} | {} | {} | {} | {} | {} |".format(
            name.removesuffix("Function"),
            yes(may(fn, "dynamodb:PutItem", API_KEY)),
            yes(may(fn, "dynamodb:PutItem", TENANT_SECRET)),
            yes(may(fn, "dynamodb:PutItem", AUDIT)),
            yes(may(fn, "dynamodb:UpdateItem", AUDIT) or may(fn, "dynamodb:DeleteItem", AUDIT)),
            yes(may(fn, "dynamodb:PutItem", INCIDENT))))
    return "\n".join(rows)


def main():
    t = cfn_yaml.load(TEMPLATE)
    if "--table" in sys.argv:
        print(table(t))
        return 0
    found = violations(t)
    for v in found:
        print(f"FAIL: {v}", file=sys.stderr)
    # The check itself: without the Slack function's Deny it must fail.
    # (The Deny also keeps the audit log out of its reach.)
    broken = copy.deepcopy(t)
    sts = broken["Resources"]["SlackFunction"]["Properties"]["Policies"][0]["Statement"]
    sts[:] = [s for s in sts if not (isinstance(s, dict) and s.get("Effect") == "Deny"
                                     and "_#APIKEY*" in json.dumps(s))]
    if not any("SlackFunction may dynamodb:PutItem on _#APIKEY" in v for v in violations(broken)):
        print("FAIL: the check does not catch a chat function that may write API keys", file=sys.stderr)
        return 1
    if found:
        return 1
    print(f"template privileges: {len(functions(t))} functions checked, only admin writes keys and tenant secrets, only the dispatcher and the scheduler write the audit log and none changes an event, no secret resolved into configuration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
