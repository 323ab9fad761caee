import { Client } from 'undici'
import { envInt, percentile, round } from './harness.js'

/**
 * One keep-alive HTTP/1.1 client (undici's Client, one connection) sending requests one after
 * another, each waiting for its answer: how the REST and proof benchmarks measure a node's
 * latency.
 *
 * Every run starts with a warm-up that is timed but not part of the result: at least
 * BENCH_WARM_UP requests (default 1,000) and at least BENCH_WARM_UP_S seconds (default 3). A
 * node that has just started, and the benchmark's own client, run their request paths as
 * unoptimized code for the first few thousand requests: on a node holding 100,000 policies a
 * query's p99 was 2.6-4.4 ms over the first 3,000 requests, 0.45-1 ms over the next 3,000 and
 * 0.26-0.45 ms over the 3,000 after those (the node's CPU profile: the same work, done faster;
 * a new client process against a warm node showed a cold first round too). A node serves for
 * days, so the goals are about the warm figures; the warm-up's p99 is kept beside them
 * (`cold_p99_ms`).
 */
export interface SequentialRequest {
  method: 'GET' | 'POST'
  path?: string
  headers?: Record<string, string>
  body?: string
}

export interface SequentialRun {
  /** ms, the measured requests in order */
  latencies: number[]
  /** ms, the warm-up requests in order */
  warmUpLatencies: number[]
  /** seconds the measured requests took */
  seconds: number
}


/**
 * `count` requests made by `request(i)` (i = 0..count-1), after the warm-up's
 * (i = -1, -2, ...: as many as fit the warm-up's time, so a request must be valid for any
 * negative i); `check` sees every answer and throws if it is wrong.
 */
export async function sequential (url: string, count: number, request: (i: number) => SequentialRequest, check: (i: number, status: number, text: string) => void): Promise<SequentialRun> {
  const client = new Client(url, { pipelining: 1, keepAliveTimeout: 60_000 })
  try {
    const send = async (i: number): Promise<number> => {
      const { method, path = '/', headers, body } = request(i)
      const sent = performance.now()
      const response = await client.request({ path, method, headers, body })
      const text = await response.body.text()
      const ms = performance.now() - sent
      check(i, response.statusCode, text)
      return ms
    }
    const warmUpLatencies: number[] = []
    // read at each run, so the smoke tests can make it small
    const [warmUp, warmUpMs] = [envInt('BENCH_WARM_UP', 1000), 1000 * envInt('BENCH_WARM_UP_S', 3)]
    const warming = performance.now()
    while (warmUpLatencies.length < warmUp || performance.now() - warming < warmUpMs) warmUpLatencies.push(await send(-1 - warmUpLatencies.length))
    const latencies: number[] = []
    const started = performance.now()
    for (let i = 0; i < count; i++) latencies.push(await send(i))
    return { latencies, warmUpLatencies, seconds: (performance.now() - started) / 1000 }
  } finally {
    await client.close()
  }
}

/** The latency figures of a run, as the results files give them. */
export function latencyFigures (run: SequentialRun): { per_s: number, p50_ms: number, p99_ms: number, max_ms: number, cold_p99_ms?: number } {
  return {
    per_s: Math.round(run.latencies.length / run.seconds),
    p50_ms: round(percentile(run.latencies, 50), 3),
    p99_ms: round(percentile(run.latencies, 99), 3),
    max_ms: round(Math.max(...run.latencies), 1),
    ...(run.warmUpLatencies.length > 0 ? { cold_p99_ms: round(percentile(run.warmUpLatencies, 99), 3) } : {})
  }
}
