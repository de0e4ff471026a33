import { assert, describe, it } from "@effect/vitest"
import {
  iptablesCleanup,
  parseRuntimeState,
  parseStorageContainers,
  splitRule,
  unlisted
} from "../src/PodmanState.ts"

const a = "a".repeat(64)
const b = "b".repeat(64)

describe("PodmanState", () => {
  it("reads storage's containers.json and finds what the list lacks, among our names", () => {
    const storage = parseStorageContainers(
      JSON.stringify([
        { id: a, names: ["lnd"], metadata: "{}" },
        { id: b, names: ["other-working-container"] }
      ])
    )
    assert.deepStrictEqual(storage, [
      { id: a, name: "lnd" },
      { id: b, name: "other-working-container" }
    ])
    assert.deepStrictEqual(unlisted(storage, [{ id: a }]), [{ id: b, name: "other-working-container" }])
    assert.deepStrictEqual(unlisted(storage, [], new Set(["lnd"])), [{ id: a, name: "lnd" }])
    assert.deepStrictEqual(unlisted(storage, [{ id: a }, { id: b }]), [])
    assert.deepStrictEqual(parseStorageContainers("null"), [])
    assert.throws(() => parseStorageContainers("{"), /containers.json does not parse/)
  })

  it("splits iptables -S lines with quoted comments", () => {
    assert.deepStrictEqual(splitRule('-A X -m comment --comment "name: \\"net\\" id: \\"abc\\"" -j ACCEPT'), [
      "-A",
      "X",
      "-m",
      "comment",
      "--comment",
      'name: "net" id: "abc"',
      "-j",
      "ACCEPT"
    ])
  })

  it("removes exactly one container's CNI rules and its own chains", () => {
    const chain = "CNI-0c685329b147efcb1f42dea6"
    const other = "CNI-1111111111111111aaaaaaaa"
    const rules = [
      "-P POSTROUTING ACCEPT",
      `-N ${chain}`,
      `-N ${other}`,
      `-A POSTROUTING -s 10.89.0.2/32 -m comment --comment "name: \\"archipelago\\" id: \\"${a}\\"" -j ${chain}`,
      `-A POSTROUTING -s 10.89.0.3/32 -m comment --comment "name: \\"archipelago\\" id: \\"${b}\\"" -j ${other}`,
      `-A ${chain} -d 10.89.0.0/24 -m comment --comment "name: \\"archipelago\\" id: \\"${a}\\"" -j ACCEPT`
    ].join("\n")
    assert.deepStrictEqual(iptablesCleanup(rules, a), [
      [
        "-D",
        "POSTROUTING",
        "-s",
        "10.89.0.2/32",
        "-m",
        "comment",
        "--comment",
        `name: "archipelago" id: "${a}"`,
        "-j",
        chain
      ],
      [
        "-D",
        chain,
        "-d",
        "10.89.0.0/24",
        "-m",
        "comment",
        "--comment",
        `name: "archipelago" id: "${a}"`,
        "-j",
        "ACCEPT"
      ],
      ["-F", chain],
      ["-X", chain]
    ])
    assert.deepStrictEqual(iptablesCleanup(rules, "c".repeat(64)), [])
  })
})

describe("PodmanState.parseRuntimeState", () => {
  it("reads runc's init pid and podman's bundle label", () => {
    const text = JSON.stringify({
      id: a,
      init_process_pid: 30152,
      config: {
        labels: [
          "io.container.manager=libpod",
          `bundle=/var/lib/containers/storage/overlay-containers/${a}/userdata`
        ]
      }
    })
    assert.deepStrictEqual(parseRuntimeState(text), {
      pid: 30152,
      bundle: `/var/lib/containers/storage/overlay-containers/${a}/userdata`
    })
    assert.isUndefined(parseRuntimeState("{"))
    assert.isUndefined(parseRuntimeState(JSON.stringify({ init_process_pid: 1, config: { labels: [] } })))
  })
})
