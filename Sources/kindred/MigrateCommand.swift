import ArgumentParser
import KindredConfig
import KindredSupport
import MariaDBClient
import MemberStore

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the member store's missing schema migrations to the database of KINDRED_MYSQL.",
        discussion: """
            Safe to run again (it applies only what is missing) and from several machines at once \
            (one migrates, the others wait for it). The database URL comes from the config file or \
            KINDRED_MYSQL, never from a flag.
            """
    )

    @OptionGroup var configOptions: ConfigOptions

    @Option(name: .customLong("lock-timeout"), help: "Seconds to wait for another process's migration to finish.")
    var lockTimeout: Int = 60

    func validate() throws {
        guard lockTimeout >= 0 else { throw ValidationError("--lock-timeout must not be negative") }
    }

    func run() async throws {
        let url = try await mysqlURL(configOptions)
        let timeout = Duration.seconds(lockTimeout)
        let (applied, version) = try await runOnThread(name: "kindred-migrate") {
            let session = try StoreSession.connect(url: url)
            defer { session.close() }
            let applied = try session.migrate(lockTimeout: timeout)
            return (applied.map { "\($0.version): \($0.description)" }, try session.appliedVersions().last ?? 0)
        }
        if applied.isEmpty {
            print("schema up to date (version \(version)); nothing to apply")
        } else {
            for line in applied { print("applied \(line)") }
            print("schema now at version \(version)")
        }
    }
}

/// The member store URL from the layered configuration (never a flag).
func mysqlURL(_ options: ConfigOptions) async throws -> String {
    guard let url = try await options.load().mysql, !url.isEmpty else {
        throw CLIError("no member store configured: set KINDRED_MYSQL (or \"mysql\" in the config file)")
    }
    if let configuration = try? MariaDBConnection.Configuration(url: url) { CommandContext.shared.record(configuration) }
    return url
}

