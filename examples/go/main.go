// Command consumer is an outside consumer of Caravan's article and quote streams,
// written from docs/events.md alone: its own consumer group, validation against the
// published JSON Schemas, its own dead-letter stream, pending entries first after a
// restart, and claims of what a dead consumer left. It prints one JSON line per
// thing it does.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const (
	dataField          = "__data__"
	knownSchemaVersion = 1
)

type settings struct {
	redisURL       string
	streams        map[string]string // stream key -> event type
	group          string
	consumer       string
	deadLetters    string
	schemasDir     string
	startID        string
	claimIdle      time.Duration
	maxDeliveries  int64
	block          time.Duration
	batch          int64
	once           bool
	crashAfterRead int64
}

func env(name, fallback string) string {
	if value, ok := os.LookupEnv(name); ok {
		return value
	}
	return fallback
}

func envInt(name string, fallback int64) int64 {
	value, err := strconv.ParseInt(env(name, strconv.FormatInt(fallback, 10)), 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	return value
}

func loadSettings() settings {
	once := flag.Bool("once", false, "exit when there is nothing left to read or claim")
	crash := flag.Int64("crash-after-read", 0, "read this many new entries per stream, then exit without acknowledging them")
	flag.Parse()
	prefix := env("CARAVAN_STREAM_PREFIX", "caravan:")
	group := env("CONSUMER_GROUP", "example")
	host, _ := os.Hostname()
	return settings{
		redisURL: env("REDIS_URL", "redis://127.0.0.1:6379/0"),
		streams:  map[string]string{prefix + "articles": "ArticleEvent", prefix + "quotes": "QuoteEvent"},
		group:    group,
		consumer: env("CONSUMER_NAME", host),
		// Never Caravan's dead-letter stream: `caravan deadletters replay` would re-add
		// our poison for every group, the indexer included.
		deadLetters:    env("DEADLETTER_STREAM", group+":deadletters"),
		schemasDir:     env("SCHEMAS_DIR", "docs/schemas"),
		startID:        env("START_ID", "0"),
		claimIdle:      time.Duration(envInt("CLAIM_IDLE_MS", 60000)) * time.Millisecond,
		maxDeliveries:  envInt("MAX_DELIVERIES", 5),
		block:          time.Duration(envInt("BLOCK_MS", 5000)) * time.Millisecond,
		batch:          envInt("BATCH", 100),
		once:           *once,
		crashAfterRead: *crash,
	}
}

func report(line map[string]any) {
	encoded, _ := json.Marshal(line)
	fmt.Println(string(encoded))
}

type poison struct{ class, message string }

func (p *poison) Error() string { return p.class + ": " + p.message }

type consumer struct {
	rdb     *redis.Client
	s       settings
	schemas map[string]*jsonschema.Schema
	seen    map[string]int64 // idempotency_key -> highest version
	counts  map[string]int
	removed []string
}

func loadSchemas(dir string, types map[string]string) (map[string]*jsonschema.Schema, error) {
	compiler := jsonschema.NewCompiler()
	compiler.AssertFormat()
	compiled := map[string]*jsonschema.Schema{}
	for _, name := range types {
		file, err := os.Open(filepath.Join(dir, name+".json"))
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(file)
		file.Close()
		if err != nil {
			return nil, err
		}
		// Registered under the schema's own $id: nothing is fetched over the network.
		id, _ := doc.(map[string]any)["$id"].(string)
		if err := compiler.AddResource(id, doc); err != nil {
			return nil, err
		}
		if compiled[name], err = compiler.Compile(id); err != nil {
			return nil, err
		}
	}
	return compiled, nil
}

func (c *consumer) streamKeys() []string {
	keys := make([]string, 0, len(c.s.streams))
	for key := range c.s.streams {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

func (c *consumer) ensureGroups(ctx context.Context) error {
	for _, stream := range c.streamKeys() {
		err := c.rdb.XGroupCreateMkStream(ctx, stream, c.s.group, c.s.startID).Err()
		// The group exists (another replica, or an earlier run): keep its position.
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return err
		}
	}
	return nil
}

// After a restart under the same name: what we had been given and not acknowledged.
func (c *consumer) readOwnPending(ctx context.Context) error {
	for _, stream := range c.streamKeys() {
		after := "0"
		for {
			reply, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: c.s.group, Consumer: c.s.consumer, Streams: []string{stream, after},
				Count: c.s.batch, Block: -1,
			}).Result()
			if err != nil {
				return err
			}
			if len(reply) == 0 || len(reply[0].Messages) == 0 {
				break
			}
			for _, message := range reply[0].Messages {
				if err := c.handle(ctx, stream, message, "pending"); err != nil {
					return err
				}
				after = message.ID
			}
		}
	}
	return nil
}

// Entries another consumer of the group was given and has not acknowledged for
// claimIdle: it is presumed dead. Then forget consumers left with nothing.
func (c *consumer) claimAbandoned(ctx context.Context) (int, error) {
	claimed := 0
	for _, stream := range c.streamKeys() {
		cursor := "0-0"
		for {
			messages, next, err := c.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: stream, Group: c.s.group, Consumer: c.s.consumer,
				MinIdle: c.s.claimIdle, Start: cursor, Count: c.s.batch,
			}).Result()
			if err != nil {
				return claimed, err
			}
			for _, message := range messages {
				if err := c.handle(ctx, stream, message, "claimed"); err != nil {
					return claimed, err
				}
			}
			claimed += len(messages)
			if cursor = next; cursor == "0-0" {
				break
			}
		}
		if err := c.removeIdleConsumers(ctx, stream); err != nil {
			return claimed, err
		}
	}
	return claimed, nil
}

func (c *consumer) removeIdleConsumers(ctx context.Context, stream string) error {
	consumers, err := c.rdb.XInfoConsumers(ctx, stream, c.s.group).Result()
	if err != nil {
		return err
	}
	for _, info := range consumers {
		// A consumer's pending entries go with it: remove only the empty ones.
		if info.Name == c.s.consumer || info.Pending > 0 || info.Idle < c.s.claimIdle {
			continue
		}
		if err := c.rdb.XGroupDelConsumer(ctx, stream, c.s.group, info.Name).Err(); err != nil {
			return err
		}
		c.removed = append(c.removed, info.Name)
		report(map[string]any{"event": "consumer_removed", "stream": stream, "consumer": info.Name})
	}
	return nil
}

// New entries; false when a read came back empty.
func (c *consumer) readNew(ctx context.Context) (bool, error) {
	keys := c.streamKeys()
	count := c.s.batch
	if c.s.crashAfterRead > 0 {
		count = c.s.crashAfterRead
	}
	streams := append([]string{}, keys...)
	for range keys {
		streams = append(streams, ">")
	}
	reply, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: c.s.group, Consumer: c.s.consumer, Streams: streams, Count: count, Block: c.s.block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if c.s.crashAfterRead > 0 {
		// A stand-in for a crash between delivery and acknowledgement.
		entries := []string{}
		for _, stream := range reply {
			for _, message := range stream.Messages {
				entries = append(entries, stream.Stream+"/"+message.ID)
			}
		}
		report(map[string]any{"event": "crash", "consumer": c.s.consumer, "entries": entries})
		os.Exit(3)
	}
	for _, stream := range reply {
		for _, message := range stream.Messages {
			if err := c.handle(ctx, stream.Stream, message, "new"); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

func (c *consumer) handle(ctx context.Context, stream string, message redis.XMessage, via string) error {
	if message.Values == nil {
		// Deleted while pending (trimmed or XDEL): nothing left to process.
		report(map[string]any{"event": "gone", "stream": stream, "id": message.ID, "via": via})
		return c.rdb.XAck(ctx, stream, c.s.group, message.ID).Err()
	}
	deliveries := int64(1)
	if via != "new" {
		pending, err := c.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: stream, Group: c.s.group, Start: message.ID, End: message.ID, Count: 1,
		}).Result()
		if err != nil {
			return err
		}
		if len(pending) > 0 {
			deliveries = pending[0].RetryCount
		}
	}
	var err error
	if deliveries > c.s.maxDeliveries {
		err = &poison{"TooManyDeliveries", fmt.Sprintf("delivered %d times", deliveries)}
	} else {
		err = c.process(stream, message, via)
	}
	var bad *poison
	if errors.As(err, &bad) {
		err = c.deadLetter(ctx, stream, message, bad)
	}
	if err != nil {
		return err
	}
	return c.rdb.XAck(ctx, stream, c.s.group, message.ID).Err()
}

func (c *consumer) process(stream string, message redis.XMessage, via string) error {
	data, ok := message.Values[dataField].(string)
	if !ok || len(message.Values) != 1 {
		return &poison{"NotAnEvent", fmt.Sprintf("%d fields, expected only %s", len(message.Values), dataField)}
	}
	if !utf8.ValidString(data) {
		return &poison{"NotJson", "not UTF-8"}
	}
	instance, err := jsonschema.UnmarshalJSON(strings.NewReader(data))
	if err != nil {
		return &poison{"NotJson", err.Error()}
	}
	event, isObject := instance.(map[string]any)
	if !isObject {
		return &poison{"SchemaViolation", "not a JSON object"}
	}
	if version := fmt.Sprint(event["schema_version"]); version != strconv.Itoa(knownSchemaVersion) {
		// A version we were not written for: park it, do not guess (docs/events.md).
		return &poison{"UnknownSchemaVersion", "schema_version " + version}
	}
	eventType := c.s.streams[stream]
	if err := c.schemas[eventType].Validate(instance); err != nil {
		return &poison{"SchemaViolation", eventType + ": " + err.Error()}
	}
	// Both are required by the schema just checked.
	key := event["idempotency_key"].(string)
	version, _ := event["version"].(json.Number).Int64()
	// Idempotent on idempotency_key + version: a redelivery or an older version changes nothing.
	previous, known := c.seen[key]
	duplicate := known && previous >= version
	if !duplicate {
		c.seen[key] = version
	}
	c.counts["valid"]++
	if duplicate {
		c.counts["duplicates"]++
	}
	switch via {
	case "pending":
		c.counts["pending_reread"]++
	case "claimed":
		c.counts["claimed"]++
	}
	report(map[string]any{"event": "valid", "stream": stream, "id": message.ID, "via": via,
		"key": key, "version": version, "duplicate": duplicate})
	return nil
}

func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Our own dead-letter stream, in Caravan's DeadLetter shape so the same tools read it.
func (c *consumer) deadLetter(ctx context.Context, stream string, message redis.XMessage, bad *poison) error {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	payload, _ := message.Values[dataField].(string)
	others := map[string]string{}
	for name, value := range message.Values {
		if name != dataField {
			others[name] = base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(value)))
		}
	}
	letter := map[string]any{
		"schema_version": 1, "event_id": uuid4(), "occurred_at": now, "stream": stream,
		"entry_id": message.ID, "payload": base64.StdEncoding.EncodeToString([]byte(payload)),
		"other_fields": others, "error_class": bad.class, "error_message": bad.message,
		"service": c.s.group + "/" + c.s.consumer, "attempts": 1, "failed_at": now,
		"idempotency_key": stream + "/" + message.ID,
	}
	var encoded bytes.Buffer
	if err := json.NewEncoder(&encoded).Encode(letter); err != nil {
		return err
	}
	// Added before the ack: a crash in between writes the letter twice, never loses it.
	letterID, err := c.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: c.s.deadLetters, Values: []any{dataField, bytes.TrimSpace(encoded.Bytes())},
	}).Result()
	if err != nil {
		return err
	}
	c.counts["poison"]++
	report(map[string]any{"event": "poison", "stream": stream, "id": message.ID,
		"error_class": bad.class, "dead_letter": letterID})
	return nil
}

func run() error {
	s := loadSettings()
	schemas, err := loadSchemas(s.schemasDir, s.streams)
	if err != nil {
		return err
	}
	options, err := redis.ParseURL(s.redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(options)
	defer rdb.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	c := &consumer{rdb: rdb, s: s, schemas: schemas, seen: map[string]int64{},
		counts: map[string]int{"valid": 0, "duplicates": 0, "poison": 0, "pending_reread": 0, "claimed": 0}}
	if err := c.ensureGroups(ctx); err != nil {
		return err
	}
	if err := c.readOwnPending(ctx); err != nil {
		return err
	}
	for ctx.Err() == nil {
		claimed, err := c.claimAbandoned(ctx)
		if err != nil {
			return err
		}
		read, err := c.readNew(ctx)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if s.once && claimed == 0 && !read {
			break
		}
	}
	summary := map[string]any{"event": "summary", "consumer": s.consumer, "removed_consumers": c.removed}
	for name, count := range c.counts {
		summary[name] = count
	}
	if c.removed == nil {
		summary["removed_consumers"] = []string{}
	}
	report(summary)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
