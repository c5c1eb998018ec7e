import ArgumentParser
import Foundation
import MariaDBClient
import MemberStore
import Pipeline
import RedisClient
import ScoreStore

struct ShardsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shards",
        abstract: "List and manage the Redis-compatible shards (rows in MySQL: every program sees the same list).",
        subcommands: [List.self, Add.self, Drain.self, Activate.self, Budget.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each shard: state, weight, members assigned, keys and used memory.")
        @OptionGroup var configOptions: ConfigOptions

        func run() async throws {
            let mysql = try mysqlConfiguration(try await configOptions.load())
            let lines = try await onDedicatedThread(name: "kindred-shards") { () throws -> [String] in
                RedisClient.ignoreSIGPIPE()
                let connection = try MariaDBConnection(configuration: mysql)
                defer { connection.close() }
                let shards = try ShardCatalog(connection: connection).list()
                guard !shards.isEmpty else { return ["no shards: add one with `kindred shards add redis://HOST:PORT`"] }
                var config = ShardConnectionManager.Configuration()
                config.connectTimeout = .seconds(1)
                config.readTimeout = .seconds(2)
                let manager = ShardConnectionManager(
                    shards: shards.map { ShardEndpoint(id: $0.id, address: $0.address.url) },
                    configuration: config)
                defer { manager.close() }
                let store = ScoreStore(manager: manager)
                var lines = ["id  address                        weight  state     members  budget      keys      used memory"]
                for shard in shards {
                    let live: String
                    do {
                        let stats = try store.shardStats(shard: shard.id)
                        live = "\(pad(String(stats.keys), 8))  \(megabytes(stats.usedMemory))"
                    } catch {
                        live = "unreachable (\((error as? ScoreStoreError)?.code.description ?? "error"))"
                    }
                    lines.append("\(pad(String(shard.id), 2))  \(pad(shard.address.description, 29))  \(pad(String(shard.weight), 6))  "
                        + "\(pad(shard.state.rawValue, 8))  \(pad(String(shard.assignedMembers), 7))  "
                        + "\(pad(shard.memoryBudget.map { Bytes.text(Int($0)) } ?? "-", 10))  \(live)")
                }
                return lines
            }
            for line in lines { print(line) }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a shard; new members start landing on it.")
        @OptionGroup var configOptions: ConfigOptions

        @Argument(help: "redis://HOST:PORT")
        var address: String

        @Option(help: "Relative share of new members (1 to 1000000).")
        var weight: Int = 1

        @Option(name: .customLong("memory-budget"), help: "Memory the shard may use, e.g. 512MB, 2GiB or bytes (backfill refuses to exceed it).")
        var memoryBudget: String?

        func validate() throws {
            if let memoryBudget { _ = try parseBudget(memoryBudget) }
        }

        func run() async throws {
            let mysql = try mysqlConfiguration(try await configOptions.load())
            let (address, weight, budget) = (address, weight, try memoryBudget.map(parseBudget))
            let shard = try await onDedicatedThread(name: "kindred-shards") { () throws -> ShardInfo in
                let connection = try MariaDBConnection(configuration: mysql)
                defer { connection.close() }
                return try ShardCatalog(connection: connection).add(address: address, weight: weight, memoryBudget: budget)
            }
            print("added shard \(shard.id): \(shard.address) (weight \(shard.weight), \(shard.state.rawValue)"
                + (shard.memoryBudget.map { ", memory budget \(Bytes.text(Int($0)))" } ?? "") + ")")
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
            try await onDedicatedThread(name: "kindred-shards") {
                let connection = try MariaDBConnection(configuration: mysql)
                defer { connection.close() }
                try ShardCatalog(connection: connection).setMemoryBudget(id, value)
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
    try await onDedicatedThread(name: "kindred-shards") {
        let connection = try MariaDBConnection(configuration: mysql)
        defer { connection.close() }
        try ShardCatalog(connection: connection).setState(id, state)
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
