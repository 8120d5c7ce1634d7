CREATE TABLE "reconciliation_breaks" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"provider" text NOT NULL,
	"bill_date" text NOT NULL,
	"kind" text NOT NULL,
	"ref" text NOT NULL,
	"order_id" text,
	"trade_no" text,
	"ours" jsonb,
	"theirs" jsonb,
	"status" text DEFAULT 'OPEN' NOT NULL,
	"first_run_id" bigint NOT NULL,
	"last_run_id" bigint NOT NULL,
	"heal_action" text,
	"healed_at" timestamp with time zone,
	"resolved_by" text,
	"resolution_note" text,
	"resolved_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "reconciliation_breaks_status_known" CHECK ("reconciliation_breaks"."status" in ('OPEN','EXPECTED','AUTO_HEALED','RESOLVED')),
	CONSTRAINT "reconciliation_breaks_resolved_has_who" CHECK ("reconciliation_breaks"."status" <> 'RESOLVED' or ("reconciliation_breaks"."resolved_by" is not null and "reconciliation_breaks"."resolution_note" is not null))
);
--> statement-breakpoint
CREATE TABLE "reconciliation_runs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"provider" text NOT NULL,
	"bill_date" text NOT NULL,
	"workflow_id" text NOT NULL,
	"workflow_run_id" text NOT NULL,
	"statement_id" bigint,
	"status" text DEFAULT 'RUNNING' NOT NULL,
	"summary" jsonb,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "reconciliation_statement_chunks" (
	"statement_id" bigint NOT NULL,
	"seq" integer NOT NULL,
	"data" "bytea" NOT NULL,
	CONSTRAINT "reconciliation_statement_chunks_statement_id_seq_pk" PRIMARY KEY("statement_id","seq")
);
--> statement-breakpoint
CREATE TABLE "reconciliation_statement_rows" (
	"statement_id" bigint NOT NULL,
	"line_no" integer NOT NULL,
	"trade_no" text NOT NULL,
	"order_id" text NOT NULL,
	"type" text NOT NULL,
	"out_request_no" text,
	"currency" char(3) NOT NULL,
	"amount" bigint NOT NULL,
	"fee" bigint NOT NULL,
	"status" text NOT NULL,
	"occurred_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "reconciliation_statements" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"provider" text NOT NULL,
	"bill_date" text NOT NULL,
	"sha256" char(64),
	"bytes" bigint,
	"encoding" text NOT NULL,
	"zipped" boolean NOT NULL,
	"downloaded_at" timestamp with time zone DEFAULT now() NOT NULL,
	"rows_staged" integer DEFAULT 0 NOT NULL,
	"parsed_at" timestamp with time zone,
	"declared_summary" jsonb,
	"rejected_lines" jsonb,
	"rejected_count" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
ALTER TABLE "orders" DROP CONSTRAINT "orders_settled_by_known";--> statement-breakpoint
ALTER TABLE "payment_events" DROP CONSTRAINT "payment_events_source_known";--> statement-breakpoint
CREATE UNIQUE INDEX "reconciliation_breaks_day_kind_ref_key" ON "reconciliation_breaks" USING btree ("provider","bill_date","kind","ref");--> statement-breakpoint
CREATE INDEX "reconciliation_breaks_status_idx" ON "reconciliation_breaks" USING btree ("status","bill_date");--> statement-breakpoint
CREATE UNIQUE INDEX "reconciliation_runs_workflow_run_key" ON "reconciliation_runs" USING btree ("workflow_run_id");--> statement-breakpoint
CREATE INDEX "reconciliation_runs_day_idx" ON "reconciliation_runs" USING btree ("provider","bill_date","started_at");--> statement-breakpoint
CREATE INDEX "reconciliation_statement_rows_statement_idx" ON "reconciliation_statement_rows" USING btree ("statement_id","order_id");--> statement-breakpoint
CREATE UNIQUE INDEX "reconciliation_statements_day_hash_key" ON "reconciliation_statements" USING btree ("provider","bill_date","sha256");--> statement-breakpoint
CREATE INDEX "orders_paid_at_idx" ON "orders" USING btree ("paid_at");--> statement-breakpoint
CREATE INDEX "refunds_settled_at_idx" ON "refunds" USING btree ("settled_at");--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_settled_by_known" CHECK ("orders"."settled_by" is null or "orders"."settled_by" in ('mq','poll','manual','reconciliation'));--> statement-breakpoint
ALTER TABLE "payment_events" ADD CONSTRAINT "payment_events_source_known" CHECK ("payment_events"."source" in ('mq','poll','manual','reconciliation'));