/**
 * Waits for every promise, then fails with the first that failed: unlike Promise.all, nothing
 * is left running behind the failure (a write the caller re-plans after, say).
 */
export async function settleAll (promises: Array<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed !== undefined) throw failed.reason
}
