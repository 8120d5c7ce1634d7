-- Existing rows get 'simulator' through the column default: before this column every order of a
-- deployment was at its one PAYMENT_PROVIDER, and nothing is released yet, so every database this runs on
-- was on the simulator. A database that ran with PAYMENT_PROVIDER=alipay sets its rows after migrating:
--   UPDATE orders SET provider = 'alipay';
ALTER TABLE "orders" ADD COLUMN "provider" text DEFAULT 'simulator' NOT NULL;--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_provider_known" CHECK ("orders"."provider" in ('simulator','alipay','wechatpay'));
