import { toContainerState } from "@archy/core/Observed"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import {
  classifyFailure,
  displayCommand,
  parseEventLine,
  parseImagesJson,
  parseInspectJson,
  parseLastCheckOutput,
  parseNetworksJson,
  parsePsJson,
  stderrSummary
} from "../src/CliRuntime.ts"

// Recorded from `podman ps -a --format json` (podman 4.3.1): created (never started: Go's zero
// time), running with our label and a health suffix, exited with code 3, and one whose image has
// no labels (`Labels: null`). Trimmed to the fields that vary.
const psSample = `[
  {
    "AutoRemove": false, "Command": ["/bin/sleep", "3600"], "CreatedAt": "Less than a second ago",
    "Exited": false, "ExitedAt": -62135596800, "ExitCode": 0,
    "Id": "42e7a8ec7f5a98a0063a9a28fd1286e413f13b6a8400b1180fb8def6732e931a",
    "Image": "localhost/archy-test/busybox:1",
    "ImageID": "472302998ea691b3dc6e43a6c80bd31abef5a9650a39ad63ca6cdc13ca157728", "IsInfra": false,
    "Labels": { "archy-test.recipe": "4edcf7a0b5d70f2c", "archy-test.version": "1" },
    "Mounts": [], "Names": ["archy-cli-test-sample-created"], "Namespaces": {
      
    }, "Networks": ["podman"], "Pid": 0, "Pod": "", "PodName": "", "Ports": null, "Size": null,
    "StartedAt": -62135596800, "State": "created", "Status": "Created", "Created": 1795672990
  },
  {
    "AutoRemove": false, "Command": ["/bin/sleep", "3600"], "CreatedAt": "Less than a second ago",
    "Exited": false, "ExitedAt": -62135596800, "ExitCode": 0,
    "Id": "bb87a919ec7cd26da0b89e50f6417cf6df8efbd14e1f24c4532fb02e7745d5c5",
    "Image": "localhost/archy-test/busybox:1",
    "ImageID": "472302998ea691b3dc6e43a6c80bd31abef5a9650a39ad63ca6cdc13ca157728", "IsInfra": false,
    "Labels": { "archy-test.version": "1", "io.archipelago.app": "demo" },
    "Mounts": [], "Names": ["archy-cli-test-sample-running"], "Namespaces": {}, "Networks": ["podman"],
    "Pid": 23022, "Pod": "", "PodName": "", "Ports": null, "Size": null, "StartedAt": 1795672990,
    "State": "running", "Status": "Up Less than a second ago (healthy)", "Created": 1795672990
  },
  {
    "AutoRemove": false, "Command": ["sh", "-c", "exit 3"], "CreatedAt": "Less than a second ago",
    "Exited": true, "ExitedAt": 1795672990, "ExitCode": 3,
    "Id": "6e0738588475ed79daeafff7b5907485a9c6e1df7a964cf42f3d9436684467e8",
    "Image": "localhost/archy-test/busybox:2",
    "ImageID": "06639e8a0cdda6acb0972512c7fd98fd89e548e07befb8eb95a058942824d007", "IsInfra": false,
    "Labels": { "archy-test.version": "2" },
    "Mounts": [], "Names": ["archy-cli-test-sample-exited"], "Namespaces": {}, "Networks": ["podman"],
    "Pid": 0, "Pod": "", "PodName": "", "Ports": null, "Size": null, "StartedAt": 1795672990,
    "State": "exited", "Status": "Exited (3) 1 second ago", "Created": 1795672990
  },
  {
    "AutoRemove": false, "Command": ["/f"], "CreatedAt": "Less than a second ago", "Exited": false,
    "ExitedAt": -62135596800, "ExitCode": 0,
    "Id": "0d3c6b0e1f6a4c8f9e2b7d5a3c1e9f8b7a6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b",
    "Image": "localhost/archy-cli-test/nolabel:1",
    "ImageID": "aad2d797ca79fc65f421d774bc44d1604cfbef870a0a6776659bbfe30dac3d1f", "IsInfra": false,
    "Labels": null, "Mounts": [], "Names": ["archy-cli-test-sample-nolabel"], "Namespaces": {},
    "Networks": ["podman"], "Pid": 0, "Pod": "", "PodName": "", "Ports": null, "Size": null,
    "StartedAt": -62135596800, "State": "created", "Status": "Created", "Created": 1795672994
  }
]`

// `podman images --format json`: an image with two tags is printed once per tag; a dangling image
// has no `Names` at all.
const imagesSample = `[
    {
        "Id": "aad2d797ca79fc65f421d774bc44d1604cfbef870a0a6776659bbfe30dac3d1f", "ParentId": "",
        "RepoTags": null,
        "RepoDigests": ["localhost/archy-cli-test/nolabel@sha256:0380db1310157f83bad1bf565914de00a7ff0db9aec5e43b5c78f029a5da8015"],
        "Size": 11331, "SharedSize": 0, "VirtualSize": 11331, "Labels": null, "Containers": 1,
        "Names": ["localhost/archy-cli-test/nolabel:1", "localhost/archy-cli-test/nolabel:alias"],
        "Digest": "sha256:0380db1310157f83bad1bf565914de00a7ff0db9aec5e43b5c78f029a5da8015",
        "History": ["localhost/archy-cli-test/nolabel:alias", "localhost/archy-cli-test/nolabel:1"],
        "Created": 1795672994, "CreatedAt": "2026-11-26T06:03:14Z"
    },
    {
        "Id": "aad2d797ca79fc65f421d774bc44d1604cfbef870a0a6776659bbfe30dac3d1f", "ParentId": "",
        "RepoTags": null,
        "RepoDigests": ["localhost/archy-cli-test/nolabel@sha256:0380db1310157f83bad1bf565914de00a7ff0db9aec5e43b5c78f029a5da8015"],
        "Size": 11331, "SharedSize": 0, "VirtualSize": 11331, "Labels": null, "Containers": 1,
        "Names": ["localhost/archy-cli-test/nolabel:1", "localhost/archy-cli-test/nolabel:alias"],
        "Digest": "sha256:0380db1310157f83bad1bf565914de00a7ff0db9aec5e43b5c78f029a5da8015",
        "History": ["localhost/archy-cli-test/nolabel:alias", "localhost/archy-cli-test/nolabel:1"],
        "Created": 1795672994, "CreatedAt": "2026-11-26T06:03:14Z"
    },
    {
        "Id": "06639e8a0cdda6acb0972512c7fd98fd89e548e07befb8eb95a058942824d007", "ParentId": "",
        "RepoTags": null,
        "RepoDigests": ["localhost/archy-test/busybox@sha256:4b0fa447769e8ba766ae98f0fa9f30fa6412d9302287cb96d580aa19140d15a0"],
        "Size": 2131150, "SharedSize": 0, "VirtualSize": 2131150,
        "Labels": { "archy-test.version": "2" }, "Containers": 0,
        "Names": ["localhost/archy-test/busybox:2"],
        "Digest": "sha256:4b0fa447769e8ba766ae98f0fa9f30fa6412d9302287cb96d580aa19140d15a0",
        "History": ["localhost/archy-test/busybox:2"], "Created": 1795671641, "CreatedAt": "2026-11-26T05:40:41Z"
    },
    {
        "Id": "5f1b0c7e2d3a4b6c8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5", "ParentId": "",
        "RepoTags": null, "RepoDigests": [], "Size": 11331, "SharedSize": 0, "VirtualSize": 11331,
        "Labels": null, "Containers": 0, "Dangling": true,
        "Digest": "sha256:0380db1310157f83bad1bf565914de00a7ff0db9aec5e43b5c78f029a5da8015",
        "History": [], "Created": 1795672994, "CreatedAt": "2026-11-26T06:03:14Z"
    }
]`

// `podman network ls --format json`: 4.3 lists subnets itself; an internal network has no gateway.
const networksSample = `[
  {
    "name": "archy-cli-test-sample-int",
    "id": "81d092364fcae15b3dedc410f17f3785c63cc62c29325a99e1e3aa850e751329",
    "driver": "bridge", "network_interface": "cni-podman3", "created": "2026-11-26T06:05:37.094501041Z",
    "subnets": [{ "subnet": "10.89.0.0/24" }],
    "ipv6_enabled": false, "internal": true, "dns_enabled": false, "ipam_options": { "driver": "host-local" }
  },
  {
    "name": "archy-cli-test-sample-net",
    "id": "ddcbd6c6c42cd4d3ba1ee239d58e1bbd6ea4db4d2d78ea035a333d15d47247a1",
    "driver": "bridge", "network_interface": "cni-podman2", "created": "2026-11-26T06:05:37.050501043Z",
    "subnets": [{ "subnet": "10.89.252.0/24", "gateway": "10.89.252.1" }],
    "ipv6_enabled": false, "internal": false, "dns_enabled": false, "ipam_options": { "driver": "host-local" }
  }
]`

const ok = <A>(r: Result.Result<A, string>): A => {
  if (Result.isFailure(r)) throw new Error(`expected success, got: ${r.failure}`)
  return r.success
}

const failure = <A>(r: Result.Result<A, string>): string => {
  if (Result.isSuccess(r)) throw new Error("expected a failure")
  return r.failure
}

describe("parsePsJson", () => {
  it("maps podman 4.3 ps entries to ObservedContainer", () => {
    const containers = ok(parsePsJson(psSample))
    assert.deepStrictEqual(containers, [
      {
        id: "42e7a8ec7f5a98a0063a9a28fd1286e413f13b6a8400b1180fb8def6732e931a",
        name: "archy-cli-test-sample-created",
        image: "localhost/archy-test/busybox:1",
        labels: { "archy-test.recipe": "4edcf7a0b5d70f2c", "archy-test.version": "1" },
        state: "created",
        exitCode: 0
      },
      {
        id: "bb87a919ec7cd26da0b89e50f6417cf6df8efbd14e1f24c4532fb02e7745d5c5",
        name: "archy-cli-test-sample-running",
        image: "localhost/archy-test/busybox:1",
        labels: { "archy-test.version": "1", "io.archipelago.app": "demo" },
        state: "running",
        exitCode: 0,
        startedAtMs: 1795672990_000,
        health: "healthy"
      },
      {
        id: "6e0738588475ed79daeafff7b5907485a9c6e1df7a964cf42f3d9436684467e8",
        name: "archy-cli-test-sample-exited",
        image: "localhost/archy-test/busybox:2",
        labels: { "archy-test.version": "2" },
        state: "exited",
        exitCode: 3,
        startedAtMs: 1795672990_000
      },
      {
        id: "0d3c6b0e1f6a4c8f9e2b7d5a3c1e9f8b7a6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b",
        name: "archy-cli-test-sample-nolabel",
        image: "localhost/archy-cli-test/nolabel:1",
        labels: {},
        state: "created",
        exitCode: 0
      }
    ])
  })

  it("reads an empty list, and null as empty", () => {
    assert.deepStrictEqual(ok(parsePsJson("[]\n")), [])
    assert.deepStrictEqual(ok(parsePsJson("null")), [])
  })

  it("omits startedAtMs for StartedAt 0", () => {
    const one = JSON.stringify([
      { Id: "x", Names: ["n"], Image: "i", Labels: {}, State: "configured", ExitCode: 0, StartedAt: 0 }
    ])
    assert.deepStrictEqual(ok(parsePsJson(one)), [
      { id: "x", name: "n", image: "i", labels: {}, state: "configured", exitCode: 0 }
    ])
  })

  it("rejects output that is not the expected JSON", () => {
    assert.match(failure(parsePsJson("")), /output: empty/)
    assert.match(failure(parsePsJson("Error: something\n")), /Error: something/)
    assert.match(failure(parsePsJson(`{"Id":"x"}`)), /.+/)
    assert.match(
      failure(
        parsePsJson(`[{"Id":"x","Names":["n"],"Image":"i","State":"running","ExitCode":"0","StartedAt":1}]`)
      ),
      /ExitCode/
    )
    assert.match(
      failure(
        parsePsJson(`[{"Id":"x","Names":[],"Image":"i","State":"running","ExitCode":0,"StartedAt":1}]`)
      ),
      /no name/
    )
  })
})

describe("toContainerState", () => {
  it("keeps podman's state names and maps the rest to unknown", () => {
    for (const s of [
      "created",
      "running",
      "paused",
      "stopping",
      "exited",
      "stopped",
      "configured",
      "removing"
    ]) {
      assert.strictEqual(toContainerState(s), s)
    }
    assert.strictEqual(toContainerState("Running"), "running")
    assert.strictEqual(toContainerState("dead"), "unknown")
    assert.strictEqual(toContainerState(""), "unknown")
  })
})

describe("parseImagesJson", () => {
  it("merges an image printed once per tag and keeps a dangling image with no names", () => {
    assert.deepStrictEqual(ok(parseImagesJson(imagesSample)), [
      {
        id: "aad2d797ca79fc65f421d774bc44d1604cfbef870a0a6776659bbfe30dac3d1f",
        names: ["localhost/archy-cli-test/nolabel:1", "localhost/archy-cli-test/nolabel:alias"],
        digest: "sha256:0380db1310157f83bad1bf565914de00a7ff0db9aec5e43b5c78f029a5da8015"
      },
      {
        id: "06639e8a0cdda6acb0972512c7fd98fd89e548e07befb8eb95a058942824d007",
        names: ["localhost/archy-test/busybox:2"],
        digest: "sha256:4b0fa447769e8ba766ae98f0fa9f30fa6412d9302287cb96d580aa19140d15a0"
      },
      {
        id: "5f1b0c7e2d3a4b6c8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5",
        names: [],
        digest: "sha256:0380db1310157f83bad1bf565914de00a7ff0db9aec5e43b5c78f029a5da8015"
      }
    ])
  })

  it("rejects a wrong shape", () => {
    assert.match(failure(parseImagesJson(`[{"Names":["a"]}]`)), /Id/)
  })
})

describe("parseNetworksJson", () => {
  it("takes the first subnet and its gateway", () => {
    assert.deepStrictEqual(ok(parseNetworksJson(networksSample)), [
      { name: "archy-cli-test-sample-int", subnet: "10.89.0.0/24" },
      { name: "archy-cli-test-sample-net", subnet: "10.89.252.0/24", gateway: "10.89.252.1" }
    ])
  })

  it("accepts a network without subnets", () => {
    assert.deepStrictEqual(ok(parseNetworksJson(`[{"name":"host-ish","subnets":null}]`)), [
      { name: "host-ish" }
    ])
  })

  it("rejects a wrong shape", () => {
    assert.match(failure(parseNetworksJson(`[{"Name":"podman"}]`)), /name/)
  })
})

describe("displayCommand", () => {
  it("never shows environment values", () => {
    const shown = displayCommand("podman", [
      "create",
      "--name",
      "lnd",
      "-e",
      "RPCPASS=hunter2",
      "--env=TOKEN=abc=def",
      "--label",
      "a=b",
      "img:1",
      "sh",
      "-c",
      "echo hi"
    ])
    assert.strictEqual(
      shown,
      `podman create --name lnd -e RPCPASS=… --env=TOKEN=… --label a=b img:1 sh -c "echo hi"`
    )
    assert.notInclude(shown, "hunter2")
    assert.notInclude(shown, "abc")
  })
})

describe("classifyFailure", () => {
  const base = { endpoint: "podman", command: "podman start x", exitCode: 125 }

  it("classifies podman 4.3's messages", () => {
    const reason = (stderr: string, extra: { container?: string; image?: string } = {}) =>
      classifyFailure({ ...base, stderr, ...extra })
    assert.deepInclude(
      reason(`Error: no container with name or ID "archy-cli-test-nope" found: no such container\n`, {
        container: "archy-cli-test-nope"
      }),
      { _tag: "NoSuchContainer", container: "archy-cli-test-nope" }
    )
    assert.deepInclude(
      reason(
        `Error: creating container storage: the container name "c" is already in use by 42e7a8ec. You have to remove that container to be able to reuse that name: that name is already in use\n`,
        { container: "c" }
      ),
      { _tag: "NameInUse", container: "c" }
    )
    assert.deepInclude(
      reason(`Error: localhost/archy-test/nope:1: image not known\n`, {
        image: "localhost/archy-test/nope:1"
      }),
      {
        _tag: "ImageMissing",
        image: "localhost/archy-test/nope:1",
        detail: "Error: localhost/archy-test/nope:1: image not known"
      }
    )
    assert.deepInclude(
      reason(
        "Cannot connect to Podman. Please verify your connection to the Linux system using `podman system connection list`\n" +
          `Error: unable to connect to Podman socket: Get "http://d/v4.3.1/libpod/_ping": dial unix /nope.sock: connect: no such file or directory\n`
      ),
      { _tag: "PodmanUnreachable", endpoint: "podman" }
    )
    // podman 4.3 starting a container whose host port another process holds: not a name conflict.
    assert.deepInclude(
      reason(
        `Error: unable to start container "ee4e0d7f2666": cannot listen on the TCP port: listen tcp4 127.0.0.1:18999: bind: address already in use\n`,
        { container: "c" }
      ),
      {
        _tag: "UnexpectedOutput",
        detail: `exit 125: Error: unable to start container "ee4e0d7f2666": cannot listen on the TCP port: listen tcp4 127.0.0.1:18999: bind: address already in use`
      }
    )
    assert.deepInclude(reason(`Error: context must be a directory: "/tmp/nodir"\n`), {
      _tag: "UnexpectedOutput",
      operation: "podman start x",
      detail: `exit 125: Error: context must be a directory: "/tmp/nodir"`
    })
  })

  it("summarises stderr by its Error lines, else its first lines", () => {
    const pullStderr = [
      "Trying to pull 127.0.0.1:1/archy/nope:1...",
      `time="2026-11-26T06:03:25Z" level=warning msg="Failed, retrying in 1s ... (1/3)."`,
      `Error: initializing source docker://127.0.0.1:1/archy/nope:1: pinging container registry 127.0.0.1:1: connection refused`,
      ""
    ].join("\n")
    assert.strictEqual(
      stderrSummary(pullStderr),
      "Error: initializing source docker://127.0.0.1:1/archy/nope:1: pinging container registry 127.0.0.1:1: connection refused"
    )
    assert.strictEqual(stderrSummary("a\n\nb\nc\nd\n"), "a | b | c")
    assert.strictEqual(stderrSummary(""), "(no output on stderr)")
  })
})

// Recorded from `podman events --format json` (podman 4.3.1): a container's death and an image
// event, which has a `Name` (the image) but no `ID`.
const diedLine =
  '{"ContainerExitCode":137,"ID":"25d5927e30c0de042ec8334620a194113f9f6214a8f84d9fc13dde8772a6c0b5","Image":"localhost/archy-test/busybox:1","Name":"probe-ev1","Status":"died","Time":"2026-11-26T06:31:11.566621793Z","Type":"container","Attributes":{"archy-test.recipe":"4b6f13757438ddde","archy-test.version":"1"}}'
const pullLine =
  '{"Name":"localhost/archy-test/busybox:1","Status":"pull","Time":"2026-11-26T06:31:11.312755654Z","Type":"image","Attributes":null}'

describe("parseEventLine", () => {
  it("reads podman 4.3's event lines, with the time to the millisecond", () => {
    assert.deepStrictEqual(
      parseEventLine(diedLine),
      Result.succeed({
        type: "container",
        action: "died",
        id: "25d5927e30c0de042ec8334620a194113f9f6214a8f84d9fc13dde8772a6c0b5",
        name: "probe-ev1",
        timeMs: Date.UTC(2026, 10, 26, 6, 31, 11, 566)
      })
    )
    assert.deepStrictEqual(
      parseEventLine(pullLine),
      Result.succeed({
        type: "image",
        action: "pull",
        name: "localhost/archy-test/busybox:1",
        timeMs: Date.UTC(2026, 10, 26, 6, 31, 11, 312)
      })
    )
  })

  it("prefers numeric times (later podman) over the RFC 3339 one", () => {
    const line = JSON.stringify({ ID: "x", Name: "n", Status: "start", Type: "container", time: 1795674671 })
    assert.deepInclude(Result.getOrUndefined(parseEventLine(line)), { timeMs: 1795674671000 })
    const nano =
      '{"Name":"n","Status":"start","Type":"container","Time":"2000-01-01T00:00:00Z","timeNano":1795674671566621793}'
    assert.deepInclude(Result.getOrUndefined(parseEventLine(nano)), { timeMs: 1795674671566 })
  })

  it("rejects lines that are not events", () => {
    for (const line of ["", "not json", "{}", '{"Status":"died","Type":"container"}', "[1]"]) {
      assert.isTrue(Result.isFailure(parseEventLine(line)), line)
    }
  })
})

describe("parseLastCheckOutput", () => {
  it("takes the last check's output from `podman container inspect`, else its exit code", () => {
    const inspect = (log: unknown) =>
      JSON.stringify([
        { Id: "x", State: { Status: "running", Health: { Status: "starting", FailingStreak: 2, Log: log } } }
      ])
    assert.strictEqual(
      parseLastCheckOutput(
        inspect([
          { Start: "", End: "", ExitCode: 0, Output: "fine" },
          { Start: "", End: "", ExitCode: 1, Output: "oops\nerr" }
        ])
      ),
      "oops err"
    )
    assert.strictEqual(parseLastCheckOutput(inspect([{ ExitCode: 2, Output: "" }])), "exit code 2")
    assert.isUndefined(parseLastCheckOutput(inspect(null)))
    assert.isUndefined(parseLastCheckOutput("not json"))
  })
})

describe("parseInspectJson", () => {
  // Trimmed from `podman container inspect NAME --format json` (podman 4.3.1).
  const entry = (over: Record<string, unknown> = {}) => ({
    Id: "x",
    Name: "app",
    Path: "/run/podman-init",
    Args: ["--", "/bin/sleep", "3600"],
    Config: {
      Env: ["PATH=/bin", "TERM=xterm", "container=podman", "A=1"],
      Cmd: ["/bin/sleep", "3600"],
      Entrypoint: "",
      Labels: { "archy.app": "app" }
    },
    HostConfig: { ExtraHosts: ["host.archipelago:10.89.0.1"] },
    ...over
  })

  it("maps env, labels, extra hosts, and Path + Args as the process podman runs", () => {
    const parsed = parseInspectJson(JSON.stringify([entry()]))
    assert.deepStrictEqual(Result.getOrUndefined(parsed), {
      name: "app",
      env: ["PATH=/bin", "TERM=xterm", "container=podman", "A=1"],
      args: ["/run/podman-init", "--", "/bin/sleep", "3600"],
      labels: { "archy.app": "app" },
      extraHosts: ["host.archipelago:10.89.0.1"]
    })
  })

  it("without Path: the entrypoint (4.x string or 5.x array) and the command", () => {
    const config = (entrypoint: unknown) => ({
      Config: { Env: null, Labels: null, Entrypoint: entrypoint, Cmd: ["echo a b"] }
    })
    for (const entrypoint of ["/bin/sh -c", ["/bin/sh", "-c"]]) {
      const parsed = parseInspectJson(JSON.stringify([{ Name: "/app", ...config(entrypoint) }]))
      assert.deepStrictEqual(Result.getOrUndefined(parsed), {
        name: "app",
        env: [],
        args: ["/bin/sh", "-c", "echo a b"],
        labels: {},
        extraHosts: []
      })
    }
  })

  it("no container is undefined; output of another shape is a failure", () => {
    assert.isTrue(Result.isSuccess(parseInspectJson("[]")))
    assert.isUndefined(Result.getOrUndefined(parseInspectJson("[]")))
    assert.isTrue(Result.isFailure(parseInspectJson("not json")))
    assert.isTrue(Result.isFailure(parseInspectJson(JSON.stringify([{ Name: "app" }]))))
  })
})
