/// The version of Kindred this build is, for `kindred --version`, the
/// `kindred_build_info` metric and anywhere else a program names itself.
/// Raised by hand on each release.
package enum KindredVersion {
    package static let current = "0.9.0"
}
