import Foundation
import KindredCore
import MemberStore
import ScoreStore
import Scoring
import WorkQueue

/// The dashboard's HTML, rendered on the server: no JavaScript, no outside
/// resources (the charts are inline SVG), every dynamic text escaped, and
/// never a member's answers. Forms that act carry the session's CSRF token.
enum AdminPages {
    // MARK: Layout

    static let sections: [(path: String, title: String)] = [
        ("/admin", "Overview"), ("/admin/queue", "Queue"), ("/admin/runs", "Runs"), ("/admin/shards", "Shards"),
        ("/admin/members", "Members"),
    ]

    static func layout(title: String, active: String, csrf: String?, refresh: Int? = nil, notice: String? = nil, problems: [String] = [], body: String) -> String {
        let nav = sections.map { section in
            section.path == active
                ? "<a class=\"on\" href=\"\(section.path)\">\(section.title)</a>"
                : "<a href=\"\(section.path)\">\(section.title)</a>"
        }.joined()
        let signOut = csrf.map { token in
            "<form method=\"post\" action=\"/admin/sign-out\" class=\"out\"><input type=\"hidden\" name=\"csrf\" value=\"\(token)\"><button>Sign out</button></form>"
        } ?? ""
        let noticeHTML = notice.map { "<p class=\"notice\">\(escape($0))</p>" } ?? ""
        let problemHTML = problems.map { "<p class=\"bad\">Unavailable: \(escape($0))</p>" }.joined()
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Kindred: \(escape(title))</title>
            \(refresh.map { "<meta http-equiv=\"refresh\" content=\"\($0)\">" } ?? "")
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <style>\(style)</style></head>
            <body><header><strong>Kindred</strong><nav>\(nav)</nav>\(signOut)</header>
            <main><h1>\(escape(title))</h1>\(noticeHTML)\(problemHTML)
            \(body)
            </main></body></html>

            """
    }

    static let style = """
        body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
        header{display:flex;gap:1.5em;align-items:center;padding:.6em 1.5em;background:#263238;color:#fff}
        header nav{display:flex;gap:1em;flex:1} header a{color:#cfd8dc;text-decoration:none} header a.on{color:#fff;font-weight:600}
        header form.out{margin:0} main{max-width:72em;margin:0 auto;padding:1em 1.5em}
        h1{font-size:1.35em;margin:.3em 0 .6em} h2{font-size:1.1em;margin:1.4em 0 .4em}
        table{border-collapse:collapse;background:#fff;margin:.3em 0 1em} td,th{padding:.3em .7em;border-bottom:1px solid #e6e6e6;text-align:left}
        th{font-weight:600;background:#f1f3f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
        .cards{display:flex;flex-wrap:wrap;gap:.8em} .card{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:.6em .9em;min-width:10em}
        .card b{display:block;font-size:1.5em;font-variant-numeric:tabular-nums} .card span{color:#666}
        .bad{color:#b71c1c;font-weight:600} .warn{color:#e65100;font-weight:600} .ok{color:#2e7d32}
        .card.bad{border-color:#e57373;background:#fff5f5} .card.warn{border-color:#ffb74d;background:#fffaf2}
        .notice{background:#e8f5e9;border:1px solid #a5d6a7;padding:.4em .7em;border-radius:4px}
        .charts{display:flex;flex-wrap:wrap;gap:1em} .chart{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:.5em}
        .chart h3{font-size:.95em;margin:0 0 .2em} .legend{font-size:.85em;color:#555}
        form.inline{display:inline;margin:0} button{font:inherit;padding:.15em .6em;cursor:pointer}
        .muted{color:#777} code{font-size:.95em}
        """

    /// HTML-escapes text for element content and attribute values.
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default:
                // Control characters (a reason from outside) are shown as a space.
                result.unicodeScalars.append(character.value < 0x20 && character != "\n" ? " " : character)
            }
        }
        return result
    }

    static func number(_ value: Int) -> String {
        let digits = String(abs(value))
        var grouped = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { grouped += "," }
            grouped.append(digit)
        }
        return (value < 0 ? "-" : "") + grouped
    }

    static func bytes(_ value: Int?) -> String {
        guard let value else { return "&ndash;" }
        let units = ["B", "KB", "MB", "GB", "TB"]
        var amount = Double(value)
        var unit = 0
        while amount >= 1024 && unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value) B" : String(format: "%.1f %@", amount, units[unit])
    }

    static func age(milliseconds: Int64) -> String {
        let seconds = max(0, milliseconds / 1000)
        if seconds < 120 { return "\(seconds) s" }
        if seconds < 7200 { return "\(seconds / 60) min" }
        return "\(seconds / 3600) h"
    }

    static func time(_ seconds: Int64) -> String { WebRoutes.rfc3339(seconds) }

    static func card(_ label: String, _ value: String, _ level: String = "") -> String {
        "<div class=\"card \(level)\"><b>\(value)</b><span>\(escape(label))</span></div>"
    }

    static func csrfField(_ token: String?) -> String {
        token.map { "<input type=\"hidden\" name=\"csrf\" value=\"\($0)\">" } ?? ""
    }

    // MARK: Charts

    struct Series {
        var label: String
        var color: String
        var values: [Double?]
    }

    /// A small line chart of per-minute values over the last hour, as inline SVG.
    static func chart(_ title: String, unit: String, series: [Series]) -> String {
        let width = 320.0, height = 110.0, left = 38.0, bottom = 16.0
        let all = series.flatMap { $0.values.compactMap { $0 } }.filter { $0.isFinite }
        let top = max(1, (all.max() ?? 0) * 1.1)
        let count = max(2, series.map(\.values.count).max() ?? 2)
        func x(_ index: Int) -> Double { left + (width - left - 4) * Double(index) / Double(count - 1) }
        func y(_ value: Double) -> Double { (height - bottom) - (height - bottom - 6) * min(value, top) / top }
        var paths = ""
        for line in series {
            var points: [String] = []
            var dots = ""
            for (index, value) in line.values.enumerated() {
                guard let value else { continue }
                let shown = value.isFinite ? value : top
                points.append(String(format: "%.1f,%.1f", x(index), y(shown)))
                // A minute with something in it gets a dot: a lone minute (no line to draw) still shows.
                if shown > 0 { dots += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.8\" fill=\"%@\"/>", x(index), y(shown), line.color) }
            }
            guard !points.isEmpty else { continue }
            paths += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"1.6\" points=\"\(points.joined(separator: " "))\"/>" + dots
        }
        let grid = """
            <line x1="\(left)" y1="\(height - bottom)" x2="\(width)" y2="\(height - bottom)" stroke="#bbb"/>\
            <line x1="\(left)" y1="6" x2="\(left)" y2="\(height - bottom)" stroke="#bbb"/>\
            <text x="\(left - 4)" y="12" font-size="10" text-anchor="end" fill="#666">\(escape(short(top)))</text>\
            <text x="\(left - 4)" y="\(height - bottom)" font-size="10" text-anchor="end" fill="#666">0</text>\
            <text x="\(left)" y="\(height - 3)" font-size="10" fill="#666">-60 min</text>\
            <text x="\(width)" y="\(height - 3)" font-size="10" text-anchor="end" fill="#666">now</text>
            """
        let legend = series.map { "<span style=\"color:\($0.color)\">&#9632;</span> \(escape($0.label))" }.joined(separator: " &nbsp; ")
        return """
            <div class="chart"><h3>\(escape(title)) <span class="muted">(\(escape(unit)))</span></h3>\
            <svg width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" role="img" aria-label="\(escape(title))">\(grid)\(paths)</svg>\
            <div class="legend">\(legend)</div></div>
            """
    }

    static func short(_ value: Double) -> String {
        if value >= 10_000 { return String(format: "%.0fk", value / 1000) }
        if value >= 100 { return String(format: "%.0f", value) }
        return String(format: "%.1f", value)
    }

    // MARK: Pages

    static func overview(_ o: AdminOverview, csrf: String?) -> String {
        var body = "<h2>Members and sets</h2><div class=\"cards\">"
        if let members = o.members {
            body += card("live members", number(members.live)) + card("deleted", number(members.deleted))
        }
        if let sets = o.sets {
            body += card("sets current", number(sets.generated - sets.stale))
            body += card("stale (answers changed since)", number(sets.stale), sets.stale > 0 ? "warn" : "")
            let evicted = o.evicted ?? 0
            body += card("never generated", number(max(0, sets.missing - evicted)))
            body += card("evicted (dormant)", number(evicted))
        }
        body += card("snapshot members", number(o.snapshotMembers))
        body += card("snapshot age", "\(Int(o.snapshotAgeSeconds)) s", o.snapshotAgeSeconds > 60 ? "warn" : "")
        body += "</div>"

        body += "<h2>Queue</h2><div class=\"cards\">"
        if let queue = o.queue {
            for priority in JobPriority.allCases {
                body += card("waiting, \(priority)", number(queue.waiting[priority] ?? 0))
            }
            body += card("retrying (delayed)", number(queue.delayed), queue.delayed > 0 ? "warn" : "")
            body += card("in flight", number(queue.processing))
            body += card("oldest in flight", age(milliseconds: queue.oldestProcessingAge), queue.oldestProcessingAge > 60_000 ? "warn" : "")
            body += card("dead letters", number(queue.dead), queue.dead > 0 ? "bad" : "")
            body += card("workers alive", number(queue.workers), queue.workers == 0 ? "bad" : "")
        }
        body += "</div>"
        if !o.workers.isEmpty {
            body += "<table><tr><th>worker</th><th>last heartbeat</th><th>jobs held</th></tr>"
            for worker in o.workers {
                let silent = o.queueNow - worker.lastHeartbeat
                body += "<tr><td><code>\(escape(worker.worker))</code></td><td class=\"\(silent > 15_000 ? "bad" : "")\">\(age(milliseconds: silent)) ago</td><td class=\"n\">\(worker.jobs.count)</td></tr>"
            }
            body += "</table>"
        }

        body += "<h2>Throughput, the last hour</h2><div class=\"charts\">"
        let minutes = Array((o.currentMinute - 59)...o.currentMinute)
        func values(_ field: String) -> [Double?] { minutes.map { Double(o.throughput[$0]?[field] ?? 0) } }
        body += chart("Jobs", unit: "per minute", series: [
            Series(label: "done", color: "#2e7d32", values: values("jobs_done")),
            Series(label: "retried", color: "#ef6c00", values: values("jobs_retry")),
            Series(label: "postponed", color: "#1565c0", values: values("jobs_postponed")),
            Series(label: "dead", color: "#c62828", values: values("jobs_dead")),
        ])
        body += chart("Enqueue to stored", unit: "ms, bucket bounds", series: [
            Series(label: "p50", color: "#1565c0", values: minutes.map { o.throughput[$0].flatMap { ThroughputRecorder.latencyQuantile(0.5, of: $0) } }),
            Series(label: "p99", color: "#c62828", values: minutes.map { o.throughput[$0].flatMap { ThroughputRecorder.latencyQuantile(0.99, of: $0) } }),
        ])
        let colors = ["#2e7d32", "#1565c0", "#c62828", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#9e9d24"]
        body += chart("Placements into other sets", unit: "per minute", series: KindredMetrics.placementOutcomes.enumerated().map { index, outcome in
            Series(label: outcome, color: colors[index % colors.count], values: values("placed_" + outcome))
        })
        body += chart("Web requests (this process)", unit: "per minute", series: [
            Series(label: "requests", color: "#1565c0", values: minutes.map { Double(o.web[$0]?.requests ?? 0) }),
            Series(label: "5xx", color: "#c62828", values: minutes.map { Double(o.web[$0]?.errors ?? 0) }),
        ])
        body += "</div>"

        body += "<h2>Shards</h2>" + shardTable(o.shards ?? [], breakers: o.breakers)
        return layout(title: "Overview", active: "/admin", csrf: csrf, refresh: 15, problems: o.problems, body: body)
    }

    static func shardTable(_ shards: [ShardAdministration.Listing], breakers: [UInt32: String]) -> String {
        guard !shards.isEmpty else { return "<p class=\"muted\">No shards registered (<code>kindred shards add</code>).</p>" }
        var html = "<table><tr><th>id</th><th>address</th><th>state</th><th>weight</th><th>members</th><th>keys</th><th>used memory</th><th>budget</th><th>breaker</th><th>nodes</th></tr>"
        for shard in shards {
            let over = shard.memoryBudget.map { budget in (shard.usedMemory ?? 0) > Int(clamping: budget) } ?? false
            let reach = shard.reachable ? "" : " <span class=\"bad\">unreachable</span>"
            let breaker = breakers[shard.id] ?? "&ndash;"
            let nodes = shard.nodes.map { "\($0.masters.count) masters, \($0.replicas.count) replicas" } ?? "standalone"
            html += """
                <tr><td class="n">\(shard.id)</td><td><code>\(escape(shard.url))</code>\(reach)</td>\
                <td class="\(shard.state == "active" ? "" : "warn")">\(escape(shard.state))</td><td class="n">\(shard.weight)</td>\
                <td class="n">\(number(shard.members))</td><td class="n">\(shard.keys.map(number) ?? "&ndash;")</td>\
                <td class="n \(over ? "bad" : "")">\(bytes(shard.usedMemory))</td><td class="n">\(bytes(shard.memoryBudget.map { Int(clamping: $0) }))</td>\
                <td class="\(breaker == "closed" || breaker == "&ndash;" ? "" : "bad")">\(escape(breaker))</td><td>\(escape(nodes))</td></tr>
                """
        }
        return html + "</table>"
    }

    static func queue(_ page: AdminQueuePage, csrf: String?, notice: String?) -> String {
        var body = ""
        if let stats = page.stats {
            body += "<div class=\"cards\">"
            for priority in JobPriority.allCases { body += card("waiting, \(priority)", number(stats.waiting[priority] ?? 0)) }
            body += card("retrying", number(stats.delayed)) + card("in flight", number(stats.processing))
            body += card("dead letters", number(stats.dead), stats.dead > 0 ? "bad" : "") + "</div>"
        }
        body += "<h2>In flight</h2>"
        let held = page.workers.flatMap { worker in worker.jobs.map { (worker.worker, $0) } }
        if held.isEmpty {
            body += "<p class=\"muted\">No job is being worked on.</p>"
        } else {
            body += "<table><tr><th>member</th><th>priority</th><th>worker</th><th>running for</th><th>attempt</th></tr>"
            for (worker, job) in held {
                body += "<tr><td><a href=\"/admin/members?id=\(job.member)\">\(job.member)</a></td><td>\(job.priority)</td><td><code>\(escape(worker))</code></td><td>\(age(milliseconds: page.queueNow - job.startedAt))</td><td class=\"n\">\(job.attempts + 1)</td></tr>"
            }
            body += "</table>"
        }
        for priority in JobPriority.allCases {
            let jobs = page.waiting[priority] ?? []
            body += "<h2>Waiting: \(priority) <span class=\"muted\">(next \(jobs.count) of \(number(page.stats?.waiting[priority] ?? 0)))</span></h2>"
            guard !jobs.isEmpty else {
                body += "<p class=\"muted\">Nothing waits.</p>"
                continue
            }
            body += "<table><tr><th>member</th><th>queued</th><th>waiting for</th></tr>"
            for job in jobs {
                body += "<tr><td><a href=\"/admin/members?id=\(job.member)\">\(job.member)</a></td><td>\(time(job.enqueuedAt / 1000))</td><td>\(age(milliseconds: page.queueNow - job.enqueuedAt))</td></tr>"
            }
            body += "</table>"
        }
        body += "<h2>Dead letters</h2>"
        if page.dead.isEmpty {
            body += "<p class=\"muted\">None.</p>"
        } else {
            body += """
                <p><form class="inline" method="post" action="/admin/queue/retry">\(csrfField(csrf))<input type="hidden" name="all" value="1"><button>Retry all \(page.dead.count)</button></form>
                <form class="inline" method="post" action="/admin/queue/delete">\(csrfField(csrf))<input type="hidden" name="all" value="1"><button>Delete all \(page.dead.count)</button></form></p>
                <table><tr><th>member</th><th>priority</th><th>attempts</th><th>died</th><th>reason</th><th></th></tr>
                """
            for job in page.dead {
                body += """
                    <tr><td><a href="/admin/members?id=\(job.member)">\(job.member)</a></td><td>\(job.priority)</td><td class="n">\(job.attempts)</td>\
                    <td>\(time(job.diedAt / 1000))</td><td>\(escape(job.reason))</td>\
                    <td><form class="inline" method="post" action="/admin/queue/retry">\(csrfField(csrf))<input type="hidden" name="member" value="\(job.member)"><button>Retry</button></form> \
                    <form class="inline" method="post" action="/admin/queue/delete">\(csrfField(csrf))<input type="hidden" name="member" value="\(job.member)"><button>Delete</button></form></td></tr>
                    """
            }
            body += "</table>"
        }
        return layout(title: "Queue", active: "/admin/queue", csrf: csrf, notice: notice, problems: page.problems, body: body)
    }

    static func runs(_ runs: [AdminRun], problems: [String], csrf: String?, now: Int64) -> String {
        var body = "<p class=\"muted\">Runs of <code>kindred backfill</code> and <code>kindred evict</code>, newest first (the last 20).</p>"
        if runs.isEmpty {
            body += "<p class=\"muted\">No run yet.</p>"
        } else {
            body += "<table><tr><th>id</th><th>command</th><th>selection</th><th>state</th><th>progress</th><th>done</th><th>skipped</th><th>gone</th><th>failed</th><th>rate</th><th>ETA</th><th>started</th><th>sessions</th></tr>"
            for run in runs {
                let record = run.record
                let processed = record.done + record.skipped + record.gone + record.failed
                let percent = record.planned > 0 ? min(100, 100 * processed / record.planned) : (record.state == .finished ? 100 : 0)
                let end = run.finished ?? (record.state == .open ? now : run.updated)
                let seconds = max(1, end - run.started)
                let rate = Double(processed) * 60 / Double(seconds)
                var eta = "&ndash;"
                if record.state == .open, rate > 0, record.planned > processed {
                    eta = "\(Int(Double(record.planned - processed) / rate) + 1) min"
                }
                let stateClass = record.state == .abandoned ? "warn" : record.state == .open ? "ok" : ""
                body += """
                    <tr><td class="n">\(record.id)</td><td>\(escape(record.command))</td><td>\(escape(record.selection))</td>\
                    <td class="\(stateClass)">\(record.state.rawValue)</td><td class="n">\(percent)% of \(number(record.planned))</td>\
                    <td class="n">\(number(record.done))</td><td class="n">\(number(record.skipped))</td><td class="n">\(number(record.gone))</td>\
                    <td class="n \(record.failed > 0 ? "bad" : "")">\(number(record.failed))</td><td class="n">\(number(Int(rate)))/min</td>\
                    <td>\(eta)</td><td>\(time(run.started))</td><td class="n">\(record.sessions)</td></tr>
                    """
                if !run.failures.isEmpty {
                    let reasons = run.failures.map { "\(escape($0.reason)): \($0.count)" }.joined(separator: "; ")
                    body += "<tr><td></td><td colspan=\"12\" class=\"bad\">failures by reason: \(reasons)</td></tr>"
                }
            }
            body += "</table>"
        }
        return layout(title: "Backfill and evict runs", active: "/admin/runs", csrf: csrf, refresh: 15, problems: problems, body: body)
    }

    static func shards(_ shards: [ShardAdministration.Listing], breakers: [UInt32: String], problems: [String], csrf: String?) -> String {
        let body = shardTable(shards, breakers: breakers) + """
            <p class="muted">Changes stay on the command line: <code>kindred shards add URL [--weight W] [--memory-budget SIZE]</code>,
            <code>add --cluster redis://HOST:PORT</code>, <code>drain ID</code>, <code>activate ID</code>, <code>budget ID SIZE</code>,
            <code>remove ID</code> (docs/managed-servers.md).</p>
            """
        return layout(title: "Shards", active: "/admin/shards", csrf: csrf, problems: problems, body: body)
    }

    static func member(_ found: AdminMember?, query: String, csrf: String?, notice: String?) -> String {
        var body = """
            <form method="get" action="/admin/members"><label>Member id <input name="id" value="\(escape(query))" inputmode="numeric" size="12"></label> <button>Look up</button></form>
            """
        if let found {
            body += "<h2>Member \(found.id)</h2>"
            if let member = found.member {
                let seeking = member.seeking.genders.map(\.name).joined(separator: ", ")
                body += """
                    <table><tr><th>gender, age</th><td>\(member.gender.name), \(member.age)</td></tr>\
                    <tr><th>seeking</th><td>\(escape(seeking)) aged \(member.ageMin)&ndash;\(member.ageMax)</td></tr>\
                    <tr><th>answers</th><td>\(member.answers.count) questions answered (not shown)</td></tr>\
                    <tr><th>blocked</th><td>\(member.blocked.count) members</td></tr>\
                    <tr><th>last active</th><td>\(member.lastActive.map(time) ?? "never")</td></tr></table>
                    """
            } else if found.deleted {
                body += "<p class=\"warn\">Deleted.</p>"
            } else if found.problems.isEmpty {
                body += "<p class=\"muted\">No such member.</p>"
            }
            let state = found.setState
            let level = state == "current" ? "ok" : state == "stale" || state == "evicted" ? "warn" : "bad"
            body += "<h2>Their set: <span class=\"\(level)\">\(state)</span></h2><table>"
            body += "<tr><th>shard</th><td>\(found.generation.map { "\($0.shardID)" } ?? found.shard.map { "\($0) (assigned)" } ?? "none")</td></tr>"
            if let generation = found.generation {
                body += "<tr><th>generated</th><td>\(time(generation.generatedAt / 1000))</td></tr>"
                body += "<tr><th>matches</th><td>\(number(generation.matchCount))</td></tr>"
            }
            if let meta = found.meta {
                body += "<tr><th>stored</th><td>\(number(meta.count)) entries for N = \(meta.limit), written \(time(meta.generatedAt))</td></tr>"
            } else if found.setRead {
                body += "<tr><th>stored</th><td class=\"bad\">no set on the shard</td></tr>"
            }
            if let evicted = found.evictedAt { body += "<tr><th>evicted</th><td>\(time(evicted))</td></tr>" }
            body += "</table>"
            if found.member != nil {
                body += """
                    <p><a href="/browse/\(found.id)">Their matches (/browse/\(found.id))</a></p>
                    <form method="post" action="/admin/members/\(found.id)/rebuild">\(csrfField(csrf))<button>Queue a rebuild</button></form>
                    """
            }
        }
        return layout(title: "Members", active: "/admin/members", csrf: csrf, notice: notice, problems: found?.problems ?? [], body: body)
    }

    static func signIn(next: String, failed: Bool) -> String {
        let body = """
            \(failed ? "<p class=\"bad\">That is not the API token.</p>" : "")
            <form method="post" action="/admin/sign-in"><input type="hidden" name="next" value="\(escape(next))">
            <label>API token <input type="password" name="token" autocomplete="current-password" size="40"></label> <button>Sign in</button></form>
            <p class="muted">The session lasts 12 hours and opens the dashboard and <code>/browse</code>, never the API.</p>
            """
        return layout(title: "Sign in", active: "", csrf: nil, body: body)
    }
}
