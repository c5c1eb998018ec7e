import Foundation
import KindredConfig

/// The config file's checks (``ConfigFileCheck``): strict JSON, known keys,
/// value types.
enum ConfigTargets {
    static func configFile(_ bytes: UnsafeBufferPointer<UInt8>) -> FuzzTarget.Outcome {
        let known = KindredConfiguration.Key.all
        do {
            try ConfigFileCheck.check(Array(bytes), path: "kindred.json", knownKeys: known)
        } catch {
            let message = error.description
            // Every refusal points into the file: a line and a column.
            require(message.contains("(line ") || message.contains(": line "), "a config error without its position: \(message)")
            return .rejected(message)
        }
        // What the strict check accepts, a plain JSON parser reads the same way: one object,
        // known keys only, integers where integers belong and strings elsewhere.
        let document = try? JSONSerialization.jsonObject(with: Data(bytes), options: [])
        guard let object = document as? [String: Any] else {
            preconditionFailure("an accepted config file is not a JSON object to Foundation")
        }
        for (key, value) in object {
            require(known.contains(key), "an accepted config file holds an unknown key")
            if KindredConfiguration.Key.integers.contains(key) {
                require(value is NSNumber && !(value is String), "an accepted integer setting is not a number")
            } else {
                require(value is String, "an accepted string setting is not a string")
            }
        }
        return .accepted
    }
}
