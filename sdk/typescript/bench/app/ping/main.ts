// `cargo xtask bench app`: publish → handler latency through the SDK, the sidecar and back
// (one message at a time), then the throughput of this service publishing as fast as it can
// (64 publishes in flight) for 5 s. The results go to $BENCH_OUT as JSON.
import { Subscription, Topic, serve } from "@busbar/pubsub";
import { writeFileSync } from "node:fs";

interface Ping {
  i: number;
}

export const ping = new Topic<Ping>("ping", { deliveryGuarantee: "at-least-once" });

const waiting = new Map<number, (at: number) => void>();
let delivered = 0;

new Subscription(ping, "pong", {
  handler: (m) => {
    delivered++;
    waiting.get(m.i)?.(performance.now());
    waiting.delete(m.i);
  },
  maxConcurrency: 64,
});

await serve();

async function roundTrip(i: number): Promise<number> {
  const start = performance.now();
  const arrived = new Promise<number>((resolve) => waiting.set(i, resolve));
  await ping.publish({ i });
  return (await arrived) - start;
}

// Warm-up (the first delivery may wait for the sidecar to find this service).
for (let i = 0; i < 50; i++) await roundTrip(-1 - i);

const samples = Number(process.env.BENCH_SAMPLES ?? 1000);
const latencies: number[] = [];
for (let i = 0; i < samples; i++) latencies.push(await roundTrip(i));
latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];

const before = delivered;
let published = 0;
let next = 1_000_000;
const start = performance.now();
const end = start + 5000;
await Promise.all(
  Array.from({ length: 64 }, async () => {
    while (performance.now() < end) {
      await ping.publish({ i: next++ });
      published++;
    }
  }),
);
const seconds = (performance.now() - start) / 1000;
// Every published message is delivered before the run counts as done.
while (delivered - before < published) await new Promise((r) => setTimeout(r, 20));
const drained = (performance.now() - start) / 1000;

writeFileSync(
  process.env.BENCH_OUT ?? "bench.json",
  JSON.stringify({
    samples,
    p50_ms: at(0.5),
    p99_ms: at(0.99),
    max_ms: latencies[latencies.length - 1],
    published,
    publish_per_s: published / seconds,
    delivered_per_s: published / drained,
  }),
);
