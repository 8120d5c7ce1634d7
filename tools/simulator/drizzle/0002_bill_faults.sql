-- Hand-edited to IF NOT EXISTS, like 0000_init: safe to run on a database that has it already.
CREATE TABLE IF NOT EXISTS "provider"."bill_faults" (
	"bill_date" text PRIMARY KEY NOT NULL,
	"faults" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
