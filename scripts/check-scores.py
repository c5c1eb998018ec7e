#!/usr/bin/env python3
"""An independent recomputation of SCORING.md, in another language.

Reads a survey and a members file, computes every requested member's matches
with plain Python (no shared code with the Swift engine), and compares them
with what `kindred matches --json` prints. Exits non-zero on any difference.

usage: scripts/check-scores.py [--sample K] SURVEY MEMBERS KINDRED_BINARY [ID ...]
       (no ids: every member in the file, or K of them chosen at random plus
       every hand-made edge case, ids >= 90000)
       scripts/check-scores.py --served SERVED SURVEY MEMBERS
       (SERVED: a JSON file {"top_n": N, "min_score": S, "min_common": C,
        "matches": {"ID": [{"id": ..., "score": "7.3"}, ...]}} of what a
        running system served; every listed member's list must equal the
        recomputation over MEMBERS exactly: ids, scores, order)
"""
import json
import math
import subprocess
import sys

W = [0, 1, 10, 50, 250]


def load(survey_path, members_path):
    survey = json.load(open(survey_path))
    options = {q["id"]: q["options"] for q in survey["questions"]}
    members = {}
    for line in open(members_path):
        line = line.strip()
        if not line:
            continue
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if not valid(m, options):
            continue
        members[m["id"]] = m  # a later line replaces an earlier one
    return members


def valid(m, options):
    try:
        if not (isinstance(m["id"], int) and 0 < m["id"] < 2**32):
            return False
        genders = {"man", "woman", "nonbinary"}
        if m["gender"] not in genders or not m["seeking"] or any(g not in genders for g in m["seeking"]):
            return False
        for f in ("age", "age_min", "age_max"):
            if not (isinstance(m[f], int) and 18 <= m[f] <= 120):
                return False
        if m["age_min"] > m["age_max"]:
            return False
        seen = set()
        for a in m["answers"]:
            q = a["q"]
            if q not in options or q in seen:
                return False
            seen.add(q)
            k = options[q]
            if not (0 <= a["answer"] < k) or not a["accept"] or any(not (0 <= o < k) for o in a["accept"]):
                return False
            if a["importance"] not in (0, 1, 2, 3, 4):
                return False
        return True
    except (KeyError, TypeError):
        return False


def score(a, b, min_common):
    """Tenths 0..100, or None when the pair has no score or is not candidates."""
    if a["id"] == b["id"]:
        return None
    if b["gender"] not in a["seeking"] or a["gender"] not in b["seeking"]:
        return None
    if not (a["age_min"] <= b["age"] <= a["age_max"] and b["age_min"] <= a["age"] <= b["age_max"]):
        return None
    if b["id"] in a.get("blocked", []) or a["id"] in b.get("blocked", []):
        return None
    bq = {x["q"]: x for x in b["answers"]}
    n = sA = dA = sB = dB = 0
    for x in a["answers"]:
        y = bq.get(x["q"])
        if y is None:
            continue
        n += 1
        wa, wb = W[x["importance"]], W[y["importance"]]
        dA += wa
        dB += wb
        if y["answer"] in x["accept"]:
            sA += wa
        if x["answer"] in y["accept"]:
            sB += wb
    if n < min_common or dA == 0 or dB == 0:
        return None
    m = math.sqrt(float(sA * sB) / float(dA * dB)) - 1.0 / float(n)
    t = math.floor(100.0 * m + 0.5)
    return int(min(100, max(0, t)))


def matches(a, members, top_n=5000, min_score=0, min_common=5):
    found = []
    for b in members.values():
        t = score(a, b, min_common)
        if t is not None and t >= min_score:
            found.append((-t, b["id"]))
    found.sort()
    return [{"id": i, "score": "%d.%d" % (-t // 10, -t % 10)} for t, i in found[:top_n]]


def check_served(served_path, survey_path, members_path):
    served = json.load(open(served_path))
    members = load(survey_path, members_path)
    top_n, min_score, min_common = served["top_n"], served["min_score"], served["min_common"]
    failures = wrong_scores = failing_filters = missing = extra = 0
    for key, actual in sorted(served["matches"].items(), key=lambda kv: int(kv[0])):
        member_id = int(key)
        if member_id not in members:
            failures += 1
            print("member %d was served but is not a live member" % member_id, file=sys.stderr)
            continue
        expected = matches(members[member_id], members, top_n, min_score, min_common)
        if actual == expected:
            continue
        failures += 1
        want = {m["id"]: m["score"] for m in expected}
        got = {m["id"]: m["score"] for m in actual}
        for other, value in got.items():
            if other not in want:
                extra += 1
                t = score(members[member_id], members[other], min_common) if other in members else None
                if t is None:
                    failing_filters += 1
            elif want[other] != value:
                wrong_scores += 1
        missing += sum(1 for other in want if other not in got)
        if failures <= 10:
            print("member %d differs: expected %d matches, served %d; first expected %s, first served %s" % (
                member_id, len(expected), len(actual), expected[:3], actual[:3]), file=sys.stderr)
    print("checked %d members: %d differ (%d entries missing, %d extra of which %d fail the hard filters or are gone, "
          "%d wrong scores)" % (len(served["matches"]), failures, missing, extra, failing_filters, wrong_scores))
    sys.exit(1 if failures else 0)


def main():
    args = sys.argv[1:]
    if args and args[0] == "--served":
        check_served(args[1], args[2], args[3])
        return
    sample = None
    if args and args[0] == "--sample":
        sample = int(args[1])
        args = args[2:]
    survey_path, members_path, binary = args[:3]
    members = load(survey_path, members_path)
    ids = [int(x) for x in args[3:]] or sorted(members)
    if sample is not None and not args[3:]:
        import random
        edge = [i for i in ids if i >= 90000]
        ids = sorted(set(random.sample(ids, min(sample, len(ids))) + edge))
    failures = 0
    for member_id in ids:
        expected = {"member": member_id, "matches": matches(members[member_id], members)}
        out = subprocess.run(
            [binary, "matches", "--survey", survey_path, "--members", members_path, str(member_id), "--json"],
            capture_output=True, text=True, check=True).stdout
        actual = json.loads(out)
        if actual != expected:
            failures += 1
            print("member %d differs: expected %d matches, got %d" % (
                member_id, len(expected["matches"]), len(actual["matches"])), file=sys.stderr)
    print("checked %d members, %d differ" % (len(ids), failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
