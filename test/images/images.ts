// The local images that scripts/test-images.sh builds for the real-podman suites (see README.md).
// They exist only in the local store: always run them with --pull=never.

/** busybox with /etc/archy-test-version "1"; default command `/bin/sleep 3600`. */
export const busyboxV1 = "localhost/archy-test/busybox:1"

/** The same with "2" and a different image id: the "new version" in upgrade tests. */
export const busyboxV2 = "localhost/archy-test/busybox:2"

/** Label on both images holding their version, "1" or "2". */
export const versionLabel = "archy-test.version"

/** busybox:2 plus /etc/archy-test-unhealthy (built by test/fixtures/build-images): fx-web's health check fails on it. */
export const busyboxUnhealthy = "localhost/archy-test/busybox:2-unhealthy"

/** busybox:2 without /bin/sh (built by test/fixtures/build-images): fx-web's command cannot start on it. */
export const busyboxNoShell = "localhost/archy-test/busybox:2-nosh"
