/**
 * podman adapters: the `PodmanRuntime` port, its libpod REST and CLI implementations, and the
 * translation of a desired container into podman's create request.
 */
export * as CliRuntime from "./CliRuntime.ts"
export * as ContainerCreate from "./ContainerCreate.ts"
export * as LibpodApi from "./LibpodApi.ts"
export * as LibpodRuntime from "./LibpodRuntime.ts"
export * as Mirrors from "./Mirrors.ts"
export * as PodmanRuntime from "./PodmanRuntime.ts"
export * as Socket from "./Socket.ts"
