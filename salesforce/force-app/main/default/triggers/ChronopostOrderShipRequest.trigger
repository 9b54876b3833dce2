/** An Order flagged Chronopost_Ship__c asks chronoforce to ship it now (ChronopostShipRequests). */
trigger ChronopostOrderShipRequest on Order(after insert, after update) {
    ChronopostShipRequests.publish('Order', Trigger.new, Trigger.oldMap);
}
