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
  it at run time (`{{resolve:secretsmanager:...}}`), may read a deployment
  secret it does not use (they are one per consumer: `<SecretName>/slack`,
  `/discord`, `/telegram`, `/hmac`, `/tracker`), or reads tenants' secrets
  without sending what uses them.

- a function may reach a table partition its policy does not name: its
  table access is allowed only by `dynamodb:LeadingKeys` patterns (the key
  prefixes it owns);
- with `--recorded DIR`: the store accesses made during the test suite
  (`FIREWATCH_RECORD_KEYS=DIR` while `cargo test` runs; each line
  `name action pk`, shared/domain/src/recording.rs) are not all allowed by
  the policy of the function that makes them on AWS: a router's family
  (`incidents`) names its function; `job:stream` is the function the
  table's stream invokes (the dispatcher); `job:<job>` the function whose
  schedule passes that job (`{"job": "smoke"}`). The function of the
  `retries` job runs the dispatcher's delivery policy too, so it must also
  allow what `job:stream` reached.

`python tests/template_privileges.py --table` prints each function's table
privileges (docs/DEPLOY.md); `--leading-keys` the partitions each may reach.
The checks are proven to catch a regression: the same checks run over a
copy of the template with a chat function's Deny and key patterns removed
must fail, and,
with `--recorded`, over a copy without the key patterns one recorded
access needs.
"""

import copy
import fnmatch
import json
import sys

from cfnlint.decode import cfn_yaml

TEMPLATE = "infra/template.yaml"
CHAT = ["SlackFunction", "TelegramFunction", "DiscordFunction"]
# The functions that send what names a tenant's secret (smoke checks, pages).
TENANT_SECRET_READERS = ["DispatchFunction", "SchedulerFunction", "SchedulesFunction", "ChecksFunction"]
# The functions that file queued audit events, and so write the log.
AUDIT_WRITERS = ["DispatchFunction", "SchedulerFunction"]
WRITES = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
          "dynamodb:BatchWriteItem", "dynamodb:PartiQLInsert",
          "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"]
# The functions that serve a router, by the family its source lives in
# (functions/<family>/ or bots/<family>/): their table access must be
# narrowed to the partitions they own.
ROUTER_FUNCTIONS = {
    "ingest": "IngestFunction", "incidents": "IncidentsFunction",
    "playbooks": "PlaybooksFunction", "schedules": "SchedulesFunction",
    "pipelines": "PipelinesFunction", "dossier": "DossierFunction",
    "escalation": "EscalationFunction", "silences": "SilencesFunction",
    "admin": "AdminFunction", "slack": "SlackFunction",
    "telegram": "TelegramFunction", "discord": "DiscordFunction",
}
TABLE_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
                 "dynamodb:Query", "dynamodb:ConditionCheckItem", "dynamodb:UpdateItem",
                 "dynamodb:Scan", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"]
# Sample partition keys of the records that matter (shared/domain/src/keys.rs).
API_KEY = "_#APIKEY"
TENANT_SECRET = "acme#SECRET"
AUDIT = "acme#AUDIT"
AUDIT_QUEUE = "acme#AUDITQ"
INCIDENT = "acme#INC#inc_01"


def functions(t):
    return {n: r for n, r in t["Resources"].items()
            if r.get("Type") == "AWS::Serverless::Function"}


# SAM policy templates this check knows, and what they grant.
KNOWN_TEMPLATES = {"DynamoDBStreamReadPolicy"}  # stream reads only


def unrecognised(fn):
    """Policy forms this check cannot evaluate: they fail it, so nothing
    slips past unread."""
    out = []
    for policy in fn["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            continue
        if isinstance(policy, dict) and len(policy) == 1 and next(iter(policy)) in KNOWN_TEMPLATES:
            continue
        out.append(json.dumps(policy, default=str)[:80])
    return out


def statements(fn):
    out = []
    for policy in fn["Properties"].get("Policies", []):
        if not isinstance(policy, dict):
            continue
        for st in policy.get("Statement", []):
            if "Fn::If" in st:
                # Either branch may hold: an Allow counts as present, a Deny
                # as absent (the conservative reading of each).
                st = next((b for b in st["Fn::If"][1:] if isinstance(b, dict) and "Effect" in b), None)
                if st is None or st["Effect"] == "Deny":
                    continue
            out.append(st)
    return out


def as_list(v):
    return v if isinstance(v, list) else [v]


def on_table(st):
    def table(r):
        if r == "*" or r == {"Fn::GetAtt": ["Table", "Arn"]}:
            return True
        text = json.dumps(r, default=str)
        return "Table.Arn" in text or ":table/" in text
    return any(table(r) for r in as_list(st.get("Resource", [])))


def action_matches(st, action):
    return any(fnmatch.fnmatchcase(action, a) for a in as_list(st.get("Action", [])))


def condition_holds(st, pk):
    """Whether the statement's condition holds for an item of partition
    `pk`. A condition this check does not model is read conservatively: it
    may hold for an Allow, and may not for a Deny."""
    cond = st.get("Condition")
    if not cond:
        return True
    unknown = st["Effect"] == "Allow"
    for op, body in cond.items():
        base = op.split(":")[-1]
        for key, patterns in body.items():
            if key != "dynamodb:LeadingKeys" or base not in (
                    "StringLike", "StringNotLike", "StringEquals", "StringNotEquals"):
                if not unknown:
                    return False
                continue
            if base.endswith("Like"):
                hit = any(fnmatch.fnmatchcase(pk, p) for p in as_list(patterns))
            else:
                hit = pk in as_list(patterns)
            if "Not" in base:
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
    if "resolve:secretsmanager" in json.dumps(glob, default=str):
        out.append("the globals resolve a secret into every function's configuration")
    for name, fn in fns.items():
        for form in unrecognised(fn):
            out.append(f"{name} has a policy this check cannot read: {form}")
        if name in AUDIT_WRITERS:
            continue
        # Nor may it change or take a queued event before it is filed.
        for action in ("dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                       "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"):
            if may(fn, action, AUDIT_QUEUE):
                out.append(f"{name} may {action} on {AUDIT_QUEUE}")
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
                               "secretsmanager:UpdateSecret", "secretsmanager:DeleteSecret"):
                    if st["Effect"] == "Allow" and action_matches(st, action):
                        out.append(f"{name} may {action}")
        # The deployment's secrets are one per consumer: a function reads
        # only those its fields come from, a chat function only its own.
        reads = set()
        for st in statements(fn):
            if st["Effect"] == "Allow" and action_matches(st, "secretsmanager:GetSecretValue"):
                for r in as_list(st.get("Resource", [])):
                    text = json.dumps(r, default=str)
                    if "${SecretName}-" in text or "${SecretName}*" in text or text == '"*"':
                        out.append(f"{name} may read the whole deployment secret")
                    for consumer in ("hmac", "slack", "discord", "telegram", "tracker"):
                        if "${SecretName}/" + consumer in text:
                            reads.add(consumer)
                    if "/tenants/" in text and name not in TENANT_SECRET_READERS:
                        out.append(f"{name} may read tenants' secrets")
        fields = str(fn["Properties"].get("Environment", {}).get("Variables", {}).get(
            "FIREWATCH_SECRET_FIELDS", "")).split(",")
        needed = {("hmac" if f == "hmac_secrets" else "tracker" if f == "tracker_token" else f.split("_")[0])
                  for f in fields if f}
        if reads != needed:
            out.append(f"{name} reads the secrets of {sorted(reads)}, its fields need {sorted(needed)}")
        if name in CHAT and len(reads) > 1:
            out.append(f"{name} reads another platform's secret")
        env = json.dumps(fn["Properties"].get("Environment", {}), default=str)
        if "resolve:secretsmanager" in env:
            out.append(f"{name} resolves a secret into its configuration")
    # Who may act in chat, and as whom, is the admin function's to write.
    for name in CHAT:
        for pk in ("acme#CHATID", "_#CHATID", "acme#KEY", "_#CHATLINKCODE"):
            if may(fns[name], "dynamodb:PutItem", pk):
                out.append(f"{name} may dynamodb:PutItem on {pk}")
    for name, fn in fns.items():
        for action in unnarrowed(fn):
            out.append(f"{name} may {action} on any partition (no LeadingKeys condition)")
    for job, names in job_runners(t).items():
        if len(names) > 1:
            out.append(f"job `{job}` is run by {sorted(names)}: its recorded accesses name one function")
    return out


def job_runners(t):
    """Every function that runs each job on AWS: `stream` for the table
    stream's consumer, and each job a schedule's input names."""
    out = {}
    for name, fn in functions(t).items():
        for ev in fn["Properties"].get("Events", {}).values():
            job = None
            if ev.get("Type") == "DynamoDB":
                job = "stream"
            elif ev.get("Type") in ("Schedule", "ScheduleV2"):
                job = json.loads(ev["Properties"]["Input"]).get("job")
            if job:
                out.setdefault(job, set()).add(name)
    return out


def job_functions(t):
    """The function that runs each job (one each: `violations` checks)."""
    return {job: sorted(names)[0] for job, names in job_runners(t).items()}


def function_of(t, name):
    """The function whose work `name` (a router family or `job:<job>`) is."""
    if name.startswith("job:"):
        return job_functions(t).get(name.removeprefix("job:"))
    return ROUTER_FUNCTIONS.get(name)


def unnarrowed(fn):
    """Table actions an Allow grants without a LeadingKeys condition."""
    out = []
    for st in statements(fn):
        if st["Effect"] != "Allow" or not on_table(st):
            continue
        keys = st.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        # A pattern that is all wildcard narrows nothing.
        if keys and not any(set(k) <= {"*", "#"} for k in as_list(keys)):
            continue
        out += [a for a in TABLE_ACTIONS if action_matches(st, a)]
    return out


def recorded(directory):
    """(name, action, pk) of every store access recorded in the tests."""
    import glob as globbing
    out = set()
    for path in globbing.glob(f"{directory}/*.keys"):
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split(" ", 2)
                if len(parts) == 3:
                    out.add(tuple(parts))
    return out


def unrecorded_denials(t, accesses):
    """Recorded accesses the function's policy would refuse."""
    fns = functions(t)
    out = []
    retries = job_functions(t).get("retries")
    for who, action, pk in sorted(accesses):
        names = [function_of(t, who)]
        if names[0] is None:
            out.append(f"accesses recorded for `{who}`, which is no function's family or job")
            continue
        if who == "job:stream" and retries:
            names.append(retries)
        for name in names:
            # The tests file audit events straight into the log, as
            # `firewatch dev` does; on AWS all but the audit writers queue
            # them beside it (FIREWATCH_AUDIT_VIA_DISPATCHER), which is what
            # their policy must allow.
            target = pk
            if pk.endswith("#AUDIT") and action == "PutItem" and name not in AUDIT_WRITERS:
                target += "Q"
            if not may(fns[name], f"dynamodb:{action}", target):
                out.append(f"{name} needs dynamodb:{action} on {target} ({who} reaches it in the tests) but its policy refuses it")
    return out


def leading_keys(t):
    rows = ["| function | reads | writes | deletes |", "|---|---|---|---|"]
    for name in sorted(functions(t)):
        cols = {"dynamodb:GetItem": [], "dynamodb:PutItem": [], "dynamodb:DeleteItem": []}
        for st in statements(functions(t)[name]):
            if st["Effect"] != "Allow" or not on_table(st):
                continue
            pats = as_list(st.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys", []))
            for action, col in cols.items():
                if action_matches(st, action):
                    col += [p for p in pats if p not in col]
        cell = lambda ps: ", ".join(f"`{p}`" for p in ps) or "none"
        rows.append(f"| {name.removesuffix('Function')} | {cell(cols['dynamodb:GetItem'])} | "
                    f"{cell(cols['dynamodb:PutItem'])} | {cell(cols['dynamodb:DeleteItem'])} |")
    return "\n".join(rows)


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
    if "--leading-keys" in sys.argv:
        print(leading_keys(t))
        return 0
    found = violations(t)
    accesses = set()
    if "--recorded" in sys.argv:
        accesses = recorded(sys.argv[sys.argv.index("--recorded") + 1])
        if not accesses:
            print("FAIL: --recorded names a directory with no recorded accesses", file=sys.stderr)
            return 1
        found += unrecorded_denials(t, accesses)
    for v in found:
        print(f"FAIL: {v}", file=sys.stderr)
    # The check itself: without the Slack function's Deny it must fail.
    # (The Deny also keeps the audit log out of its reach.)
    broken = copy.deepcopy(t)
    sts = broken["Resources"]["SlackFunction"]["Properties"]["Policies"][0]["Statement"]
    sts[:] = [s for s in sts if not (isinstance(s, dict) and s.get("Effect") == "Deny"
                                     and "_#APIKEY*" in json.dumps(s))]
    # ...and its key patterns: the Deny and the patterns each keep keys out.
    for st in sts:
        if isinstance(st, dict) and st.get("Effect") == "Allow":
            st.pop("Condition", None)
    if not any("SlackFunction may dynamodb:PutItem on _#APIKEY" in v for v in violations(broken)):
        print("FAIL: the check does not catch a chat function that may write API keys", file=sys.stderr)
        return 1
    if accesses:
        # Without the patterns that let one recorded access through, that
        # access is refused: the recording has teeth.
        # A router's and a job's, each.
        for label, kind in (("router", lambda w: w in ROUTER_FUNCTIONS),
                            ("job", lambda w: function_of(t, w) and w.startswith("job:"))):
            some = sorted(a for a in accesses if kind(a[0]))
            if not some:
                print(f"FAIL: no store access of any {label} was recorded", file=sys.stderr)
                return 1
            who, action, pk = some[0]
            narrowed = copy.deepcopy(t)
            for policy in narrowed["Resources"][function_of(t, who)]["Properties"]["Policies"]:
                for st in policy.get("Statement", []) if isinstance(policy, dict) else []:
                    keys = st.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
                    if st.get("Effect") == "Allow" and isinstance(keys, list):
                        keys[:] = [k for k in keys if not fnmatch.fnmatchcase(pk, k)] or ["none"]
            if not unrecorded_denials(narrowed, accesses):
                print(f"FAIL: the recorded accesses do not catch a missing key pattern of {who}", file=sys.stderr)
                return 1
    if found:
        return 1
    if accesses:
        print(f"template privileges: {len(accesses)} recorded store accesses of the routers and jobs, each allowed by its function's key patterns")
    print(f"template privileges: {len(functions(t))} functions checked, only admin writes keys and tenant secrets, only the dispatcher and the scheduler write the audit log and none changes an event, no secret resolved into configuration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
