import { readFileSync } from "node:fs"
import { defaultNodeConfig } from "@archy/core/Desired"
import type { ContainerDetails } from "@archy/podman/PodmanRuntime"
import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import {
  checkContainersConf,
  checkHosts,
  checkNetwork,
  checkSecretExposure,
  hostContainersInternalIp
} from "../src/Doctor.ts"

const net = defaultNodeConfig.network
const recipe = readFileSync(new URL("../../../image-recipe/containers.conf", import.meta.url), "utf8")
const details = (name: string, over: Partial<ContainerDetails> = {}): ContainerDetails => ({
  name,
  env: ["PATH=/bin", "COIN=BitcoinSegwit"],
  args: ["/bin/sh", "-c", "exec electrumx_server"],
  labels: { "io.archipelago.app": "electrumx" },
  extraHosts: ["host.archipelago:10.89.0.1"],
  ...over
})

describe("doctor", () => {
  it("reads host_containers_internal_ip from [containers], later files winning", () => {
    assert.strictEqual(hostContainersInternalIp([recipe]), "10.89.0.1")
    assert.strictEqual(
      hostContainersInternalIp(['[containers]\nhost_containers_internal_ip = "192.168.1.1"\n', recipe]),
      "10.89.0.1"
    )
    assert.isUndefined(hostContainersInternalIp(['[engine]\nhost_containers_internal_ip = "10.89.0.1"\n']))
    assert.isUndefined(
      hostContainersInternalIp(['[containers]\n# host_containers_internal_ip = "10.89.0.1"\n'])
    )
  })

  it("passes the image recipe's containers.conf and fails a missing or wrong setting with the fix", () => {
    assert.isTrue(
      checkContainersConf(
        [{ path: "/etc/containers/containers.conf.d/50-archipelago.conf", text: recipe }],
        net
      ).ok
    )
    const missing = checkContainersConf(
      [{ path: "/etc/containers/containers.conf", text: "[engine]\n" }],
      net
    )
    assert.isFalse(missing.ok)
    assert.include(missing.message, "no containers.conf sets host_containers_internal_ip")
    assert.include(missing.fix ?? "", "50-archipelago.conf")
    const wrong = checkContainersConf(
      [{ path: "x", text: '[containers]\nhost_containers_internal_ip = "192.168.1.1"\n' }],
      net
    )
    assert.include(wrong.message, '"192.168.1.1", not the archipelago gateway 10.89.0.1')
  })

  it("checks the network's subnet and gateway", () => {
    assert.isTrue(
      checkNetwork([{ name: "archipelago", subnet: "10.89.0.0/24", gateway: "10.89.0.1" }], net).ok
    )
    assert.isFalse(checkNetwork([], net).ok)
    assert.include(
      checkNetwork([{ name: "archipelago", subnet: "10.88.0.0/16", gateway: "10.88.0.1" }], net).message,
      "has subnet 10.88.0.0/16 and gateway 10.88.0.1"
    )
  })

  it("names a container that cannot resolve host.archipelago", () => {
    const [ok, bad] = checkHosts([details("lnd"), details("electrumx", { extraHosts: [] })], net)
    assert.isTrue(ok!.ok)
    assert.isFalse(bad!.ok)
    assert.include(bad!.message, "electrumx does not resolve host.archipelago to 10.89.0.1")
  })

  it("reports a secret in env, args or labels by container and secret name, never the value", () => {
    const value = "s3cr3t-rpc-password-0123456789"
    const secrets = new Map([["bitcoin-rpc-password", Redacted.make(value)]])
    const leaky = [
      details("electrumx", {
        env: ["PATH=/bin", `DAEMON_URL=http://archipelago:${value}@host.archipelago:8332/`]
      }),
      details("lnd", { args: ["lnd", `--bitcoind.rpcpass=${value}`] }),
      details("clean")
    ]
    const findings = checkSecretExposure(leaky, secrets)
    assert.deepStrictEqual(
      findings.map((f) => [f.ok, f.message.split(":")[0]]),
      [
        [false, "electrumx carries secret bitcoin-rpc-password in its env"],
        [false, "lnd carries secret bitcoin-rpc-password in its args"]
      ]
    )
    for (const f of findings) {
      assert.notInclude(f.message, value)
      assert.notInclude(f.fix ?? "", value)
    }
    assert.isTrue(checkSecretExposure([details("clean")], secrets)[0]!.ok)
  })
})
