CREATE TABLE "merchant_endpoints" (
	"id" text PRIMARY KEY NOT NULL,
	"url" text NOT NULL,
	"secrets" jsonb NOT NULL,
	"ladder" text DEFAULT 'stepwise' NOT NULL,
	"attempt_timeout_ms" integer DEFAULT 5000 NOT NULL,
	"status" text DEFAULT 'ENABLED' NOT NULL,
	"disabled_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "merchant_endpoints_timeout_positive" CHECK ("merchant_endpoints"."attempt_timeout_ms" > 0),
	CONSTRAINT "merchant_endpoints_status_known" CHECK ("merchant_endpoints"."status" in ('ENABLED','DISABLED'))
);
--> statement-breakpoint
CREATE TABLE "merchant_events" (
	"id" text PRIMARY KEY NOT NULL,
	"order_id" text NOT NULL,
	"sequence" integer NOT NULL,
	"type" text NOT NULL,
	"payload" jsonb NOT NULL,
	"endpoint_id" text,
	"status" text DEFAULT 'PENDING' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"delivered_at" timestamp with time zone,
	"exhausted_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notification_attempts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"event_id" text NOT NULL,
	"attempt" integer NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"duration_ms" integer NOT NULL,
	"http_status" integer,
	"error_kind" text,
	"response_prefix" text
);
--> statement-breakpoint
ALTER TABLE "orders" ADD COLUMN "notify_endpoint_id" text;--> statement-breakpoint
CREATE UNIQUE INDEX "merchant_events_order_sequence_key" ON "merchant_events" USING btree ("order_id","sequence");--> statement-breakpoint
CREATE INDEX "merchant_events_status_idx" ON "merchant_events" USING btree ("status","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "notification_attempts_event_attempt_key" ON "notification_attempts" USING btree ("event_id","attempt");