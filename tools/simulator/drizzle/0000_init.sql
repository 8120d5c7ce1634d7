-- Hand-edited to IF NOT EXISTS: until this migration existed, provider.trades was created by payrecon's
-- own 0000_init (drizzle/), so databases made before then already have it.
CREATE SCHEMA IF NOT EXISTS "provider";
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "provider"."trades" (
	"trade_no" text PRIMARY KEY NOT NULL,
	"order_id" text NOT NULL,
	"amount" bigint NOT NULL,
	"currency" char(3) NOT NULL,
	"status" text DEFAULT 'WAIT_BUYER_PAY' NOT NULL,
	"paid_amount" bigint,
	"paid_at" timestamp with time zone,
	"closed_at" timestamp with time zone,
	"faults" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "trades_order_id_unique" UNIQUE("order_id")
);
