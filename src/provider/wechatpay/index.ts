/** WeChat Pay API v3 behind payrecon's PaymentGateway (docs/providers/wechatpay.md). */
export { readTradeBill } from './bill';
export { loadWechatPayConfig, type WechatPayConfig } from './config';
export {
  StatementChecksumError,
  WechatPayError,
  WechatPayGateway,
  type WechatPayStatementLocation,
} from './gateway';
