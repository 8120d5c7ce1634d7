-- Hand-edited to IF NOT EXISTS: the migrator creates the schema first, for merchant.__drizzle_migrations.
CREATE SCHEMA IF NOT EXISTS "merchant";
--> statement-breakpoint
CREATE TABLE "merchant"."deliveries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"merchant_id" text NOT NULL,
	"webhook_id" text,
	"webhook_timestamp" bigint,
	"signature_header" text,
	"order_id" text,
	"event_type" text,
	"sequence" integer,
	"body" text NOT NULL,
	"signature_valid" boolean NOT NULL,
	"signature_error" text,
	"order_delivery" integer,
	"answer" text NOT NULL,
	"answer_body" text,
	"delay_ms" integer DEFAULT 0 NOT NULL,
	"faults" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"answered_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "merchant"."order_faults" (
	"order_id" text PRIMARY KEY NOT NULL,
	"faults" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "merchant"."merchants" (
	"merchant_id" text PRIMARY KEY NOT NULL,
	"secrets" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "deliveries_order_id_idx" ON "merchant"."deliveries" USING btree ("order_id");--> statement-breakpoint
CREATE INDEX "deliveries_webhook_id_idx" ON "merchant"."deliveries" USING btree ("webhook_id");--> statement-breakpoint
CREATE INDEX "deliveries_merchant_id_idx" ON "merchant"."deliveries" USING btree ("merchant_id");