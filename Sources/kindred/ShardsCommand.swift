import ArgumentParser
import Foundation
import KindredCore
import KindredSupport
import MariaDBClient
import MemberStore
import RedisClient
import ScoreStore

struct ShardsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shards",
        abstract: "List and manage the Redis-compatible shards (rows in MySQL: every program sees the same list).",
        subcommands: [List.self, Add.self, Remove.self, Drain.self, Activate.self, Budget.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each shard: state, weight, members assigned, keys and used memory.",
            discussion: """
                Addresses are printed with the password as ***. --json prints one JSON array, one object per shard, \
                with the fields id, url, state, weight, members, memory_budget, created_at, reachable, keys, \
                used_memory, error (docs/managed-servers.md).
                """)
        @OptionGroup var configOptions: ConfigOptions

        @Flag(help: "Print a JSON array with stable field names instead of a table.")
        var json = false

        func run() async throws {
            let mysql = try mysqlConfiguration(try await configOptions.load())
            let listings = try await runOnThread(name: "kindred-shards") { () throws -> [ShardAdministration.Listing] in
                RedisClient.ignoreSIGPIPE()
                let session = try StoreSession.connect(StoreConfiguration(mysql: mysql))
                defer { session.close() }
                return try ShardAdministration(session: session).list()
            }
            if json {
                print(try ShardAdministration.json(listings))
                return
            }
            guard !listings.isEmpty else {
                print("no shards: add one with `kindred shards add redis://HOST:PORT`")
                return
            }
            print("id  address                        weight  state     members  budget      keys      used memory")
            for shard in listings {
                let live = shard.reachable
                    ? "\(pad(String(shard.keys ?? 0), 8))  \(megabytes(shard.usedMemory ?? 0))"
                    : "unreachable (\(shard.error ?? "error"))"
                print("\(pad(String(shard.id), 2))  \(pad(shard.url, 29))  \(pad(String(shard.weight), 6))  "
                    + "\(pad(shard.state, 8))  \(pad(String(shard.members), 7))  "
                    + "\(pad(shard.memoryBudget.map { Bytes.text(Int($0)) } ?? "-", 10))  \(live)")
                if let nodes = shard.nodes {
                    // A cluster's keys and memory are summed over its masters.
                    print("    cluster: masters \(nodes.masters.joined(separator: " ")); replicas \(nodes.replicas.isEmpty ? "none" : nodes.replicas.joined(separator: " "))")
                }
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a shard; new members start landing on it.",
            discussion: """
                The shard must answer PING (after AUTH and SELECT with the URL's credentials and database) unless \
                --allow-unreachable is given, and must not be a server and database already listed, by name or by \
                resolved address (redis://localhost:7101 is redis://127.0.0.1:7101). The shard list stores the \
                password; every program prints it as ***.

                --cluster adds a whole Redis Cluster as one shard, given by one of its nodes (redis+cluster://HOST:PORT \
                is the same): it must be a node of a healthy cluster, and a plain shard must not be a cluster node. \
                Each member's keys go to the master serving their slot; failovers and resharding are followed \
                (docs/managed-servers.md).
                """)
        @OptionGroup var configOptions: ConfigOptions

        @Argument(help: """
            redis://[USER:PASSWORD@]HOST:PORT[/DB], or a cluster node as redis+cluster://[USER:PASSWORD@]HOST:PORT \
            (percent-encode @ : / % in the password). A URL with a password \
            is refused here (every user of the machine sees a command line): give - to read it from standard \
            input, or leave it out and set KINDRED_SHARD_URL.
            """)
        var address: String?

        @Option(help: "Relative share of new members (1 to 1000000).")
        var weight: Int = 1

        @Option(name: .customLong("memory-budget"), help: "Memory the shard may use, e.g. 512MB, 2GiB or bytes (backfill refuses to exceed it).")
        var memoryBudget: String?

        @Flag(name: .customLong("allow-unreachable"), help: "Add the shard even if it cannot be reached now (down on purpose); it is recorded down until `kindred shards activate ID`.")
        var allowUnreachable = false

        @Flag(help: "The address is a node of a Redis Cluster: the whole cluster is the shard.")
        var cluster = false

        func validate() throws {
            if let memoryBudget { _ = try parseBudget(memoryBudget) }
        }

        func run() async throws {
            let given = try Self.shardURL(argument: address, environment: ProcessInfo.processInfo.environment) { readLine() }
            let address = cluster && given.lowercased().hasPrefix("redis://") ? "redis+cluster://" + given.dropFirst("redis://".count) : given
            let mysql = try mysqlConfiguration(try await configOptions.load())
            let (weight, budget, allowUnreachable) = (weight, try memoryBudget.map(parseBudget), allowUnreachable)
            let added = try await runOnThread(name: "kindred-shards") { () throws -> ShardAdministration.Added in
                RedisClient.ignoreSIGPIPE()
                let session = try StoreSession.connect(StoreConfiguration(mysql: mysql))
                defer { session.close() }
                return try ShardAdministration(session: session).add(
                    address, weight: weight, memoryBudget: budget, allowUnreachable: allowUnreachable)
            }
            let shard = added.shard
            if let unreachable = added.unreachable {
                printError("warning: the shard is unreachable now, so it is recorded down: \(unreachable)")
                printError("once it is up: kindred shards activate \(added.shard.id)")
            }
            print("added shard \(shard.id): \(shard.address) (weight \(shard.weight), \(shard.state.rawValue)"
                + (shard.memoryBudget.map { ", memory budget \(Bytes.text(Int($0)))" } ?? "") + ")")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a drained, empty shard from the list.",
            discussion: """
                Refused while any member is assigned to the shard or while it holds any set (how to empty one: \
                docs/managed-servers.md), or while it cannot be reached to check (--allow-unreachable removes it unchecked).
                """)
        @OptionGroup var configOptions: ConfigOptions
        @Argument(help: "The shard id.") var id: UInt32

        @Flag(name: .customLong("allow-unreachable"), help: "Remove the shard even if it cannot be reached to check that it holds no sets.")
        var allowUnreachable = false

        func run() async throws {
            let mysql = try mysqlConfiguration(try await configOptions.load())
            let (id, allowUnreachable) = (id, allowUnreachable)
            let shard = try await runOnThread(name: "kindred-shards") { () throws -> ShardInfo in
                RedisClient.ignoreSIGPIPE()
                let session = try StoreSession.connect(StoreConfiguration(mysql: mysql))
                defer { session.close() }
                return try ShardAdministration(session: session).remove(id, allowUnreachable: allowUnreachable)
            }
            print("removed shard \(shard.id) (\(shard.address))")
        }
    }

    struct Budget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a shard's memory budget (what `kindred backfill` may fill it to), or clear it with 'none'.")
        @OptionGroup var configOptions: ConfigOptions
        @Argument(help: "The shard id.") var id: UInt32
        @Argument(help: "e.g. 512MB, 2GiB, bytes, or none.") var budget: String

        func validate() throws {
            if budget != "none" { _ = try parseBudget(budget) }
        }

        func run() async throws {
            let mysql = try mysqlConfiguration(try await configOptions.load())
            let (id, value) = (id, budget == "none" ? nil : try parseBudget(budget))
            try await runOnThread(name: "kindred-shards") {
                let session = try StoreSession.connect(StoreConfiguration(mysql: mysql))
                defer { session.close() }
                try session.shards.setMemoryBudget(id, value)
            }
            print("shard \(id): " + (value.map { "memory budget \(Bytes.text(Int($0)))" } ?? "no memory budget"))
        }
    }

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop assigning new members to a shard (its members stay).")
        @OptionGroup var configOptions: ConfigOptions
        @Argument(help: "The shard id.") var id: UInt32

        func run() async throws {
            try await setState(id, .draining, configOptions)
            print("shard \(id) is draining: no new members")
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a shard take new members again.")
        @OptionGroup var configOptions: ConfigOptions
        @Argument(help: "The shard id.") var id: UInt32

        func run() async throws {
            try await setState(id, .active, configOptions)
            print("shard \(id) is active")
        }
    }
}

private func setState(_ id: UInt32, _ state: ShardState, _ options: ConfigOptions) async throws {
    let mysql = try mysqlConfiguration(try await options.load())
    try await runOnThread(name: "kindred-shards") {
        let session = try StoreSession.connect(StoreConfiguration(mysql: mysql))
        defer { session.close() }
        try session.shards.setState(id, state)
    }
}

/// A memory budget: `512MB`, `2GiB`, `1073741824`.
func parseBudget(_ text: String) throws -> UInt64 {
    guard let bytes = Bytes.parse(text), bytes > 0 else {
        throw ValidationError("memory budget \(text): expected a size like 512MB, 2GiB or a number of bytes")
    }
    return bytes
}

private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

private func megabytes(_ bytes: Int) -> String {
    String(format: "%.1f MB", Double(bytes) / 1_048_576)
}

extension ShardsCommand.Add {
    /// The shard's URL: the argument, standard input for `-`, or
    /// `KINDRED_SHARD_URL` when there is no argument. A password is a
    /// secret, and secrets never come from the command line (DESIGN.md):
    /// an argument that carries one is refused without repeating it.
    static func shardURL(argument: String?, environment: [String: String], readLine: () -> String?) throws -> String {
        switch argument {
        case "-":
            var line: String?
            while let next = readLine() {
                let trimmed = next.trimmingCharacters(in: .whitespacesAndNewlines)
                if !trimmed.isEmpty {
                    line = trimmed
                    break
                }
            }
            guard let line else { throw CLIError("no shard URL on standard input") }
            return line
        case nil:
            guard let url = environment["KINDRED_SHARD_URL"], !url.isEmpty else {
                throw CLIError("give the shard's URL: kindred shards add redis://HOST:PORT, - to read it from standard input, or KINDRED_SHARD_URL")
            }
            return url
        case let text?:
            let plain = text.lowercased().hasPrefix("redis+cluster://") ? "redis://" + text.dropFirst("redis+cluster://".count) : text
            if let url = try? RedisURL(plain), url.password != nil {
                throw CLIError(
                    "the shard URL carries a password, which every user of this machine can read on a command line: "
                        + "pass it on standard input (echo \"$URL\" | kindred shards add -) or in KINDRED_SHARD_URL")
            }
            return text
        }
    }
}
