CREATE TABLE "orders" (
	"id" text PRIMARY KEY NOT NULL,
	"amount" bigint NOT NULL,
	"currency" char(3) NOT NULL,
	"status" text DEFAULT 'UNPAID' NOT NULL,
	"pay_deadline" timestamp with time zone NOT NULL,
	"paid_at" timestamp with time zone,
	"trade_no" text,
	"settled_by" text,
	"closed_at" timestamp with time zone,
	"close_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "orders_amount_nonnegative" CHECK ("orders"."amount" >= 0),
	CONSTRAINT "orders_status_known" CHECK ("orders"."status" in ('UNPAID','PAID','CLOSED','NEEDS_REVIEW')),
	CONSTRAINT "orders_settled_by_known" CHECK ("orders"."settled_by" is null or "orders"."settled_by" in ('mq','poll','manual')),
	CONSTRAINT "orders_paid_has_trade" CHECK ("orders"."status" <> 'PAID' or ("orders"."trade_no" is not null and "orders"."paid_at" is not null))
);
--> statement-breakpoint
CREATE TABLE "payment_discrepancies" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"order_id" text NOT NULL,
	"kind" text NOT NULL,
	"details" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"resolved_at" timestamp with time zone,
	"resolution" text
);
--> statement-breakpoint
CREATE TABLE "payment_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"order_id" text NOT NULL,
	"source" text NOT NULL,
	"message_id" text,
	"trade_no" text,
	"trade_status" text NOT NULL,
	"amount" bigint,
	"currency" char(3),
	"paid_at" timestamp with time zone,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "payment_events_source_known" CHECK ("payment_events"."source" in ('mq','poll','manual'))
);
--> statement-breakpoint
CREATE INDEX "orders_status_idx" ON "orders" USING btree ("status");--> statement-breakpoint
CREATE UNIQUE INDEX "payment_discrepancies_order_kind_key" ON "payment_discrepancies" USING btree ("order_id","kind");--> statement-breakpoint
CREATE UNIQUE INDEX "payment_events_message_id_key" ON "payment_events" USING btree ("message_id");--> statement-breakpoint
CREATE INDEX "payment_events_order_idx" ON "payment_events" USING btree ("order_id","recorded_at");