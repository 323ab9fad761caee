/** The ledgermesh version, as `get version`, the CLI and the OpenAPI document report it. */
export const VERSION = '0.1.0'
