-- Hand-edited to IF NOT EXISTS, like 0000_init: safe to run on a database that has it already.
CREATE TABLE IF NOT EXISTS "provider"."refunds" (
	"refund_no" text PRIMARY KEY NOT NULL,
	"order_id" text NOT NULL,
	"out_request_no" text NOT NULL,
	"amount" bigint NOT NULL,
	"currency" char(3) NOT NULL,
	"reason" text,
	"status" text DEFAULT 'PROCESSING' NOT NULL,
	"failure_reason" text,
	"faults" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"settle_at" timestamp with time zone NOT NULL,
	"settled_at" timestamp with time zone,
	"executions" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "refunds_order_id_out_request_no_unique" UNIQUE("order_id","out_request_no")
);
--> statement-breakpoint
ALTER TABLE "provider"."trades" ADD COLUMN IF NOT EXISTS "refunded_amount" bigint DEFAULT 0 NOT NULL;