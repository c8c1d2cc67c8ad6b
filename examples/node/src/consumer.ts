// An outside consumer of Caravan's article and quote streams, written from
// docs/events.md alone: its own consumer group, validation against the published
// JSON Schemas, its own dead-letter stream, pending entries first after a restart,
// and claims of what a dead consumer left. It prints one JSON line per thing it does.

import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";
import Redis from "ioredis";

const DATA_FIELD = "__data__";
const KNOWN_SCHEMA_VERSION = 1;

type Fields = Buffer[] | null; // flat [name, value, ...]; null when the entry was deleted
type Entry = [Buffer, Fields];
type Via = "new" | "pending" | "claimed";

interface Settings {
  redisUrl: string;
  streams: Map<string, string>; // stream key -> event type
  group: string;
  consumer: string;
  deadLetters: string;
  schemasDir: string;
  startId: string;
  claimIdleMs: number;
  maxDeliveries: number;
  blockMs: number;
  batch: number;
  once: boolean;
  crashAfterRead: number | null;
}

function settingsFrom(env: NodeJS.ProcessEnv, argv: string[]): Settings {
  const prefix = env.CARAVAN_STREAM_PREFIX ?? "caravan:";
  const group = env.CONSUMER_GROUP ?? "example";
  const crashAt = argv.indexOf("--crash-after-read");
  return {
    redisUrl: env.REDIS_URL ?? "redis://127.0.0.1:6379/0",
    streams: new Map([[`${prefix}articles`, "ArticleEvent"], [`${prefix}quotes`, "QuoteEvent"]]),
    group,
    consumer: env.CONSUMER_NAME ?? hostname(),
    // Never Caravan's dead-letter stream: `caravan deadletters replay` would re-add
    // our poison for every group, the indexer included.
    deadLetters: env.DEADLETTER_STREAM ?? `${group}:deadletters`,
    schemasDir: env.SCHEMAS_DIR ?? "docs/schemas",
    startId: env.START_ID ?? "0",
    claimIdleMs: Number(env.CLAIM_IDLE_MS ?? 60000),
    maxDeliveries: Number(env.MAX_DELIVERIES ?? 5),
    blockMs: Number(env.BLOCK_MS ?? 5000),
    batch: Number(env.BATCH ?? 100),
    once: argv.includes("--once"),
    crashAfterRead: crashAt >= 0 ? Number(argv[crashAt + 1]) : null,
  };
}

function report(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function loadValidators(dir: string, types: Iterable<string>): Map<string, ValidateFunction> {
  const ajv = new Ajv2020({ allErrors: true });
  addFormats(ajv);
  const validators = new Map<string, ValidateFunction>();
  for (const type of types) {
    const schema = JSON.parse(readFileSync(join(dir, `${type}.json`), "utf8"));
    validators.set(type, ajv.compile(schema));
  }
  return validators;
}

class Poison extends Error {
  constructor(readonly errorClass: string, message: string) {
    super(message);
  }
}

interface Event {
  schema_version: number;
  idempotency_key: string;
  version: number;
}

class Consumer {
  private readonly seen = new Map<string, number>(); // idempotency_key -> highest version
  private readonly counts = { valid: 0, duplicates: 0, poison: 0, pending_reread: 0, claimed: 0 };
  private readonly removed: string[] = [];

  constructor(
    private readonly redis: Redis,
    private readonly settings: Settings,
    private readonly validators: Map<string, ValidateFunction>,
  ) {}

  async ensureGroups(): Promise<void> {
    for (const stream of this.settings.streams.keys()) {
      try {
        await this.redis.xgroup("CREATE", stream, this.settings.group, this.settings.startId, "MKSTREAM");
      } catch (error) {
        // The group exists (another replica, or an earlier run): keep its position.
        if (!String(error).includes("BUSYGROUP")) throw error;
      }
    }
  }

  // After a restart under the same name: what we had been given and not acknowledged.
  async readOwnPending(): Promise<void> {
    const streams = [...this.settings.streams.keys()];
    const after = new Map(streams.map((s) => [s, "0"]));
    while (after.size > 0) {
      const keys = [...after.keys()];
      const reply = (await this.redis.callBuffer(
        "XREADGROUP", "GROUP", this.settings.group, this.settings.consumer, "COUNT", this.settings.batch,
        "STREAMS", ...keys, ...keys.map((k) => after.get(k) as string),
      )) as [Buffer, Entry[]][] | null;
      for (const [streamKey, entries] of reply ?? []) {
        const stream = streamKey.toString();
        if (entries.length === 0) {
          after.delete(stream);
          continue;
        }
        for (const entry of entries) await this.handle(stream, entry, "pending");
        after.set(stream, entries[entries.length - 1][0].toString());
      }
      if (reply === null) break;
    }
  }

  // Entries another consumer of the group was given and has not acknowledged for
  // claimIdleMs: it is presumed dead. Then forget consumers left with nothing.
  async claimAbandoned(): Promise<number> {
    let claimed = 0;
    for (const stream of this.settings.streams.keys()) {
      let cursor = "0-0";
      do {
        const [next, entries] = (await this.redis.callBuffer(
          "XAUTOCLAIM", stream, this.settings.group, this.settings.consumer, this.settings.claimIdleMs, cursor,
          "COUNT", this.settings.batch,
        )) as [Buffer, Entry[], Buffer[]];
        cursor = next.toString();
        for (const entry of entries) await this.handle(stream, entry, "claimed");
        claimed += entries.length;
      } while (cursor !== "0-0");
      await this.removeIdleConsumers(stream);
    }
    return claimed;
  }

  private async removeIdleConsumers(stream: string): Promise<void> {
    const consumers = (await this.redis.xinfo("CONSUMERS", stream, this.settings.group)) as unknown[][];
    for (const flat of consumers) {
      const info = new Map<string, unknown>();
      for (let i = 0; i < flat.length; i += 2) info.set(String(flat[i]), flat[i + 1]);
      const name = String(info.get("name"));
      // A consumer's pending entries go with it: remove only the empty ones.
      if (name !== this.settings.consumer && Number(info.get("pending")) === 0
          && Number(info.get("idle")) >= this.settings.claimIdleMs) {
        await this.redis.xgroup("DELCONSUMER", stream, this.settings.group, name);
        this.removed.push(name);
        report({ event: "consumer_removed", stream, consumer: name });
      }
    }
  }

  // New entries; false when a read came back empty.
  async readNew(): Promise<boolean> {
    const keys = [...this.settings.streams.keys()];
    const count = this.settings.crashAfterRead ?? this.settings.batch;
    const reply = (await this.redis.callBuffer(
      "XREADGROUP", "GROUP", this.settings.group, this.settings.consumer, "COUNT", count,
      "BLOCK", this.settings.blockMs, "STREAMS", ...keys, ...keys.map(() => ">"),
    )) as [Buffer, Entry[]][] | null;
    if (reply === null) return false;
    if (this.settings.crashAfterRead !== null) {
      // A stand-in for a crash between delivery and acknowledgement.
      const entries = reply.flatMap(([stream, delivered]) => delivered.map(([id]) => `${stream}/${id}`));
      report({ event: "crash", consumer: this.settings.consumer, entries });
      process.exit(3);
    }
    for (const [streamKey, entries] of reply) {
      for (const entry of entries) await this.handle(streamKey.toString(), entry, "new");
    }
    return true;
  }

  private async handle(stream: string, [idBuffer, fields]: Entry, via: Via): Promise<void> {
    const id = idBuffer.toString();
    if (fields === null) {
      // Deleted while pending (trimmed or XDEL): nothing left to process.
      await this.redis.xack(stream, this.settings.group, id);
      report({ event: "gone", stream, id, via });
      return;
    }
    const values = new Map<string, Buffer>();
    for (let i = 0; i < fields.length; i += 2) values.set(fields[i].toString(), fields[i + 1]);
    try {
      const deliveries = via === "new" ? 1 : await this.deliveries(stream, id);
      if (deliveries > this.settings.maxDeliveries) {
        throw new Poison("TooManyDeliveries", `delivered ${deliveries} times`);
      }
      const event = this.decode(stream, values);
      this.apply(stream, id, via, event);
    } catch (error) {
      if (!(error instanceof Poison)) throw error;
      await this.deadLetter(stream, id, values, error);
    }
    await this.redis.xack(stream, this.settings.group, id);
  }

  private async deliveries(stream: string, id: string): Promise<number> {
    const rows = (await this.redis.xpending(stream, this.settings.group, id, id, 1)) as
      [string, string, number, number][];
    return rows.length > 0 ? rows[0][3] : 1;
  }

  private decode(stream: string, values: Map<string, Buffer>): Event {
    const data = values.get(DATA_FIELD);
    if (data === undefined || values.size !== 1) {
      throw new Poison("NotAnEvent", `fields ${[...values.keys()].join(",")}, expected only ${DATA_FIELD}`);
    }
    let event: unknown;
    try {
      event = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
    } catch (error) {
      throw new Poison("NotJson", String(error));
    }
    const version = (event as { schema_version?: unknown } | null)?.schema_version;
    if (version !== KNOWN_SCHEMA_VERSION) {
      // A version we were not written for: park it, do not guess (docs/events.md).
      throw new Poison("UnknownSchemaVersion", `schema_version ${JSON.stringify(version)}`);
    }
    const type = this.settings.streams.get(stream) as string;
    const validate = this.validators.get(type) as ValidateFunction;
    if (!validate(event)) {
      throw new Poison("SchemaViolation", `${type}: ${JSON.stringify(validate.errors)}`);
    }
    return event as Event;
  }

  // Idempotent on idempotency_key + version: a redelivery or an older version changes nothing.
  private apply(stream: string, id: string, via: Via, event: Event): void {
    const previous = this.seen.get(event.idempotency_key);
    const duplicate = previous !== undefined && previous >= event.version;
    if (!duplicate) this.seen.set(event.idempotency_key, event.version);
    this.counts.valid += 1;
    if (duplicate) this.counts.duplicates += 1;
    if (via === "pending") this.counts.pending_reread += 1;
    if (via === "claimed") this.counts.claimed += 1;
    report({ event: "valid", stream, id, via, key: event.idempotency_key, version: event.version,
             duplicate });
  }

  // Our own dead-letter stream, in Caravan's DeadLetter shape so the same tools read it.
  private async deadLetter(stream: string, id: string, values: Map<string, Buffer>,
                           poison: Poison): Promise<void> {
    const now = new Date().toISOString();
    const otherFields: Record<string, string> = {};
    for (const [name, value] of values) {
      if (name !== DATA_FIELD) otherFields[name] = value.toString("base64");
    }
    const letter = {
      schema_version: 1, event_id: randomUUID(), occurred_at: now, stream, entry_id: id,
      payload: (values.get(DATA_FIELD) ?? Buffer.alloc(0)).toString("base64"),
      other_fields: otherFields, error_class: poison.errorClass, error_message: poison.message,
      service: `${this.settings.group}/${this.settings.consumer}`, attempts: 1, failed_at: now,
      idempotency_key: `${stream}/${id}`,
    };
    // Added before the ack: a crash in between writes the letter twice, never loses it.
    const letterId = await this.redis.xadd(this.settings.deadLetters, "*", DATA_FIELD, JSON.stringify(letter));
    this.counts.poison += 1;
    report({ event: "poison", stream, id, error_class: poison.errorClass, dead_letter: letterId });
  }

  summary(): void {
    report({ event: "summary", consumer: this.settings.consumer, ...this.counts,
             removed_consumers: this.removed });
  }
}

async function main(): Promise<void> {
  const settings = settingsFrom(process.env, process.argv.slice(2));
  const validators = loadValidators(settings.schemasDir, settings.streams.values());
  const redis = new Redis(settings.redisUrl);
  const consumer = new Consumer(redis, settings, validators);
  let running = true;
  process.once("SIGTERM", () => { running = false; });
  try {
    await consumer.ensureGroups();
    await consumer.readOwnPending();
    while (running) {
      const claimed = await consumer.claimAbandoned();
      const read = await consumer.readNew();
      if (settings.once && claimed === 0 && !read) break;
    }
    consumer.summary();
  } finally {
    redis.disconnect();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
