public enum KindredVersion { public static let current = "0.9.0" }
