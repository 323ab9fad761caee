import { SecretMask } from '../base/secrets.js'
import { createLogger, type Logger } from '../base/logger.js'
import { configSecrets, type NodeConfig } from './config.js'

/**
 * A node's logger and its secret mask, made from its config: the node masks its answers with
 * the same mask, so a secret it learns later (a secret-named variable) is masked in both.
 */
export function createNodeLogger (config: NodeConfig, opts: { file?: string } = {}): { log: Logger, secrets: SecretMask } {
  const { keys, values } = configSecrets(config)
  const secrets = new SecretMask(values)
  const log = createLogger({ name: config.nodeName, role: config.nodeType, level: config.logLevel, file: opts.file, secrets, secretKeys: keys })
  return { log, secrets }
}
