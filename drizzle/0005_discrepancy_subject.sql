DROP INDEX "payment_discrepancies_order_kind_key";--> statement-breakpoint
ALTER TABLE "payment_discrepancies" ADD COLUMN "subject" text DEFAULT '' NOT NULL;--> statement-breakpoint
-- Existing rows get the subject src/domain/discrepancy.ts (discrepancySubject) derives from their details.
UPDATE "payment_discrepancies" SET "subject" = coalesce(CASE
	WHEN "kind" IN ('REFUND_UNCONFIRMED', 'REFUND_EXCEEDS_PAID')
		THEN coalesce(nullif("details"->>'outRequestNo', ''), nullif("details"->>'refundId', ''))
	WHEN "kind" = 'REFUND_CONTRADICTS_RECORD' THEN nullif("details"->>'messageId', '')
	WHEN "kind" = 'NOTICE_CONTRADICTS_PROVIDER'
		THEN coalesce(nullif("details"#>>'{notice,messageId}', ''), nullif("details"->>'messageId', ''))
	ELSE coalesce(nullif("details"->>'tradeNo', ''), nullif("details"->>'outRequestNo', ''), nullif("details"->>'messageId', ''))
END, '');--> statement-breakpoint
CREATE UNIQUE INDEX "payment_discrepancies_order_kind_subject_key" ON "payment_discrepancies" USING btree ("order_id","kind","subject");
