/**
 * The OTA flags (`archy daemon` and `archy update ...` share them), their environment fallbacks
 * and defaults: the install dir, the update mirrors, the pinned release public key, the web UI
 * the verifier probes and how long a new release has to prove itself.
 */
import { Install } from "@archy/ota"
import type { MirrorOptions } from "@archy/ota/Mirrors"
import { parseMirrors } from "@archy/ota/Mirrors"
import { defaultMaxBoots, defaultWebUiUrl } from "@archy/ota/Verifier"
import { Flag } from "effect/cli"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"

export const defaultPublicKeyFile = "/etc/archipelago/release.pub"

export const updateFlags = {
  installDir: Flag.String("install-dir").pipe(
    Flag.withDescription(`Where releases live (env ARCHY_INSTALL_DIR; default ${Install.defaultInstallDir})`),
    Flag.optional
  ),
  updateMirrors: Flag.String("update-mirrors").pipe(
    Flag.withDescription(
      "Release mirrors tried in order, comma-separated base URLs serving latest.release.json (env ARCHY_UPDATE_MIRRORS)"
    ),
    Flag.optional
  ),
  updateKey: Flag.String("update-key").pipe(
    Flag.withDescription(
      `The pinned release public key (env ARCHY_UPDATE_KEY; default ${defaultPublicKeyFile})`
    ),
    Flag.optional
  ),
  updateTimeout: Flag.Int("update-timeout").pipe(
    Flag.withDescription("Seconds a mirror may take to answer (env ARCHY_UPDATE_TIMEOUT; default 10)"),
    Flag.optional
  )
}

export const verifyFlags = {
  webUiUrl: Flag.String("webui-url").pipe(
    Flag.withDescription(`The web UI the verifier probes (env ARCHY_WEBUI_URL; default ${defaultWebUiUrl})`),
    Flag.optional
  ),
  verifyTimeout: Flag.Int("verify-timeout").pipe(
    Flag.withDescription("Seconds a new release has to prove itself (env ARCHY_VERIFY_TIMEOUT; default 90)"),
    Flag.optional
  )
}

export interface UpdateOptions {
  readonly installDir: Option.Option<string>
  readonly updateMirrors: Option.Option<string>
  readonly updateKey: Option.Option<string>
  readonly updateTimeout: Option.Option<number>
}

export interface VerifyOptions {
  readonly webUiUrl: Option.Option<string>
  readonly verifyTimeout: Option.Option<number>
}

const env = (name: string): string | undefined =>
  process.env[name] !== undefined && process.env[name] !== "" ? process.env[name] : undefined

const envSeconds = (name: string): number | undefined => {
  const n = Number(env(name))
  return Number.isFinite(n) && n > 0 ? n : undefined
}

export const installDirOf = (o: { readonly installDir: Option.Option<string> }): string =>
  Option.getOrUndefined(o.installDir) ?? env("ARCHY_INSTALL_DIR") ?? Install.defaultInstallDir

export const mirrorOptionsOf = (o: UpdateOptions): MirrorOptions => ({
  mirrors: parseMirrors(Option.getOrUndefined(o.updateMirrors) ?? env("ARCHY_UPDATE_MIRRORS") ?? ""),
  publicKeyFile: Option.getOrUndefined(o.updateKey) ?? env("ARCHY_UPDATE_KEY") ?? defaultPublicKeyFile,
  timeoutMs: (Option.getOrUndefined(o.updateTimeout) ?? envSeconds("ARCHY_UPDATE_TIMEOUT") ?? 10) * 1000
})

export const otaOptionsOf = (o: UpdateOptions & VerifyOptions) => ({
  installDir: installDirOf(o),
  mirrors: mirrorOptionsOf(o),
  webUiUrl: Option.getOrUndefined(o.webUiUrl) ?? env("ARCHY_WEBUI_URL") ?? defaultWebUiUrl,
  verifyTimeout: Duration.seconds(
    Option.getOrUndefined(o.verifyTimeout) ?? envSeconds("ARCHY_VERIFY_TIMEOUT") ?? 90
  ),
  maxBoots: defaultMaxBoots
})
